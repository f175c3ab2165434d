import type { Readable } from 'node:stream';
import type { Digest } from '../../domain/digest.ts';
import type { RequestedPart, UploadPart } from '../../domain/upload.ts';
import type { UploadService, UploadView } from '../../services/uploads.ts';
import type { ContractRouter } from './route.ts';

const partDto = (uploadId: string) => (p: UploadPart) => ({ upload_id: uploadId, part_number: p.number, etag: p.etag, size_bytes: p.size });

/** Contract `UploadSession`, with the `failure_reason` and `received_parts` extensions. */
export const uploadDto = ({ session: s, parts }: UploadView) => ({
  id: s.id,
  expected_digest: s.expectedDigest,
  expected_size_bytes: s.expectedSize,
  state: s.state,
  expires_at: s.expiresAt.toISOString(),
  media_type_hint: s.mediaTypeHint,
  filename_hint: s.filenameHint,
  part_size_bytes: s.partSize,
  failure_reason: s.failureReason,
  received_parts: parts?.map(partDto(s.id)),
});

type UploadParams = { Params: { upload_id: string } };

/** `/v1/uploads*`: begin, status, parts, complete, abort. */
export function uploadRoutes(deps: { uploads: UploadService; publicUrl?: string }) {
  const { uploads } = deps;
  return (r: ContractRouter) => {
    r.define<{ Body: { expected_digest: Digest; expected_size_bytes: number; part_size_bytes?: number; media_type_hint?: string; filename_hint?: string } }>('beginUpload',
      { action: 'uploads.write' },
      async (request, reply) => {
        const b = request.body;
        const { view, created } = await uploads.begin({
          expectedDigest: b.expected_digest,
          expectedSize: b.expected_size_bytes,
          partSize: b.part_size_bytes,
          mediaTypeHint: b.media_type_hint,
          filenameHint: b.filename_hint,
        });
        return reply
          .code(created ? 201 : 200)
          .header('location', `${deps.publicUrl ?? ''}/v1/uploads/${view.session.id}`)
          .send(uploadDto(view));
      },
    );

    r.define<UploadParams>('getUpload', {}, async (request) => uploadDto(await uploads.get(request.params.upload_id)));

    r.define<{ Params: { upload_id: string; part_number: number } }>('putUploadPart', { action: 'uploads.write' }, async (request) => {
      const abort = new AbortController();
      request.raw.once('close', () => request.raw.complete || abort.abort(new Error('client closed the connection')));
      const length = request.headers['content-length'];
      const part = await uploads.putPart({
        uploadId: request.params.upload_id,
        partNumber: request.params.part_number,
        body: request.body as Readable,
        declaredLength: length === undefined ? undefined : Number(length),
        signal: abort.signal,
      });
      return partDto(request.params.upload_id)(part);
    });

    r.define<UploadParams & { Body: { parts: { number: number; etag: string; size_bytes: number }[] } }>('completeUpload',
      { action: 'uploads.write' },
      async (request) => {
        // An etag may come back in its quoted HTTP form; the value inside the quotes is the etag.
        const parts: RequestedPart[] = request.body.parts.map((p) => ({ number: p.number, etag: p.etag.replace(/^"(.+)"$/, '$1'), size: p.size_bytes }));
        return uploadDto(await uploads.complete({ uploadId: request.params.upload_id, parts }));
      },
    );

    r.define<UploadParams>('abortUpload', { action: 'uploads.write' }, async (request) => uploadDto(await uploads.abort(request.params.upload_id)));
  };
}
