import { createTransport, type Body, type ClientOptions, type PublishJob, type Schemas, type UploadSession } from './client.ts';
import { poll, type PollOptions } from './poll.ts';

export type ImgsrvClient = ReturnType<typeof createImgsrvClient>;

const enc = encodeURIComponent;

/**
 * The typed client of the `/v1` contract: one method per operation a publisher uses, with
 * the wire types of `openapi/imgsrv-v1.yaml`, and the waits for an upload or a publish job
 * (the resumable, parallel upload is `uploadBytes` in `upload.ts`). Every error status is a
 * `ClientError` carrying the server's problem document.
 */
export function createImgsrvClient(opts: ClientOptions) {
  const request = createTransport(opts);

  const client = {
    request,

    async beginUpload(body: Schemas['BeginUploadRequest']): Promise<{ session: UploadSession; created: boolean }> {
      const res = await request<UploadSession>('POST', '/v1/uploads', { json: body });
      return { session: res.body, created: res.status === 201 };
    },
    getUpload: async (id: string) => (await request<UploadSession>('GET', `/v1/uploads/${enc(id)}`)).body,
    async putPart(id: string, partNumber: number, body: Body, signal?: AbortSignal): Promise<Schemas['UploadPart']> {
      return (await request<Schemas['UploadPart']>('PUT', `/v1/uploads/${enc(id)}/parts/${partNumber}`, { body, headers: { 'content-type': 'application/octet-stream' }, signal })).body;
    },
    completeUpload: async (id: string, parts: Schemas['CompleteUploadPart'][]) => (await request<UploadSession>('POST', `/v1/uploads/${enc(id)}/complete`, { json: { parts } })).body,
    abortUpload: async (id: string) => (await request<UploadSession>('POST', `/v1/uploads/${enc(id)}/abort`)).body,
    /** Polls an upload session until it is `ready`, `failed` or `aborted` (or one of `states`). */
    waitForUpload: (id: string, o: PollOptions & { states?: readonly string[] } = {}) =>
      poll(() => client.getUpload(id), (s) => (o.states ?? ['ready', 'failed', 'aborted']).includes(s.state), o),

    createImage: async (body: Schemas['CreateImageRequest']) => (await request<Schemas['Image']>('POST', '/v1/images', { json: body })).body,
    createDraft: async (name: string, version: string) => (await request<Schemas['ImageVersion']>('POST', `/v1/images/${enc(name)}/versions`, { json: { version } })).body,
    addArtifact: async (name: string, version: string, body: Schemas['AddArtifactRequest']) =>
      (await request<Schemas['Artifact']>('POST', `/v1/images/${enc(name)}/versions/${enc(version)}/artifacts`, { json: body })).body,
    addAttachment: async (name: string, version: string, artifactId: string, body: Schemas['AddAttachmentRequest']) =>
      (await request<Schemas['Attachment']>('POST', `/v1/images/${enc(name)}/versions/${enc(version)}/artifacts/${enc(artifactId)}/attachments`, { json: body })).body,
    publish: async (name: string, version: string) => (await request<PublishJob>('POST', `/v1/images/${enc(name)}/versions/${enc(version)}/publish`)).body,
    getPublishJob: async (id: string) => (await request<PublishJob>('GET', `/v1/publish-jobs/${enc(id)}`)).body,
    retryPublishJob: async (id: string) => (await request<PublishJob>('POST', `/v1/publish-jobs/${enc(id)}/retry`)).body,
    /** Polls a publish job until it succeeded or failed. */
    waitForPublishJob: (id: string, o: PollOptions = {}) => poll(() => client.getPublishJob(id), (j) => j.state === 'succeeded' || j.state === 'failed', o),
    putAlias: async (name: string, alias: string, version: string) => (await request<Schemas['Alias']>('PUT', `/v1/images/${enc(name)}/aliases/${enc(alias)}`, { json: { version } })).body,
    getManifest: async (name: string, version: string) => (await request<Schemas['Manifest']>('GET', `/v1/images/${enc(name)}/versions/${enc(version)}`)).body,
    resolve: async (name: string, ref: string) => (await request<Schemas['Manifest']>('GET', `/v1/images/${enc(name)}/refs/${enc(ref)}`)).body,
  };
  return client;
}
