/**
 * The VM disk's geometry, as numbers and as an sfdisk script. Pure. GPT with two partitions,
 * 1 MiB aligned:
 *
 *   0        1 MiB                 65 MiB                          end-1 MiB   end
 *   | GPT    | ESP (FAT32, 64 MiB) | root (ext4, type "root x86-64") | backup GPT |
 *
 * The root partition carries the Discoverable Partitions type, which systemd-repart matches
 * to grow it on first boot when the disk is bigger than the image (Incus root disk size).
 * FAT32 with one 512-byte sector per cluster (`mkfs.vfat -s 1`) fits 64 MiB with room to
 * spare (FAT32 needs ≥ 65525 clusters).
 */
export const MiB = 1024 * 1024;
export const ESP_TYPE = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
export const ROOT_X86_64_TYPE = '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709';
const SECTOR = 512;

export interface DiskLayout {
  totalBytes: number;
  esp: { startBytes: number; sizeBytes: number; uuid: string };
  root: { startBytes: number; sizeBytes: number; uuid: string };
  diskUuid: string;
}

/**
 * Root file system size: the tree's allocated bytes plus 30% and 512 MiB for ext4 metadata,
 * the journal and a first `apt-get upgrade`, at least `minSize`, rounded up to 4 MiB.
 */
export function rootFsSize(input: { contentBytes: number; minSize: number }): number {
  const needed = Math.ceil(input.contentBytes * 1.3) + 512 * MiB;
  const size = Math.max(needed, input.minSize);
  return Math.ceil(size / (4 * MiB)) * 4 * MiB;
}

export function diskLayout(input: { rootBytes: number; espBytes?: number; uuids: { disk: string; esp: string; root: string } }): DiskLayout {
  const espBytes = input.espBytes ?? 64 * MiB;
  const espStart = 1 * MiB;
  const rootStart = espStart + espBytes;
  return {
    totalBytes: rootStart + input.rootBytes + 1 * MiB,
    esp: { startBytes: espStart, sizeBytes: espBytes, uuid: input.uuids.esp },
    root: { startBytes: rootStart, sizeBytes: input.rootBytes, uuid: input.uuids.root },
    diskUuid: input.uuids.disk,
  };
}

/** sfdisk input (sectors) that writes exactly `layout`, partition UUIDs included. */
export function sfdiskScript(layout: DiskLayout): string {
  const s = (b: number): number => b / SECTOR;
  return [
    'label: gpt',
    `label-id: ${layout.diskUuid}`,
    'unit: sectors',
    'first-lba: 2048',
    `start=${s(layout.esp.startBytes)}, size=${s(layout.esp.sizeBytes)}, type=${ESP_TYPE}, uuid=${layout.esp.uuid}, name="esp"`,
    `start=${s(layout.root.startBytes)}, size=${s(layout.root.sizeBytes)}, type=${ROOT_X86_64_TYPE}, uuid=${layout.root.uuid}, name="root"`,
    '',
  ].join('\n');
}

/** FAT volume id (8 hex digits) derived from the ESP partition UUID, so one build is self-consistent. */
export function fatVolumeId(espUuid: string): string {
  return espUuid.replace(/-/g, '').slice(0, 8);
}
