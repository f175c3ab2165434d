/**
 * Simple Streams documents as the Incus client reads them (lxc/incus shared/simplestreams).
 * Every field has the JSON type the client expects: one wrongly typed field breaks the whole
 * listing, not just its product.
 */
export interface StreamsIndex {
  format: 'index:1.0';
  index: {
    images: { datatype: 'image-downloads'; path: 'streams/v1/images.json'; format: 'products:1.0'; products: string[] };
  };
}

/**
 * One file of a product version. The client pairs the `incus.tar.xz` item with the root item
 * (`disk-kvm.img`: a VM image; `squashfs`: a container image) and takes the fingerprint from the
 * combined hash named after the root's ftype; a missing one drops the image.
 */
export interface StreamsItem {
  ftype: 'disk-kvm.img' | 'squashfs' | 'incus.tar.xz';
  /** Relative to the feed root, no query string; the client appends it to the remote URL. */
  path: string;
  size: number;
  /** Lowercase hex, no prefix. */
  sha256: string;
  /** On the incus.tar.xz item of a VM image: sha256 of the metadata bytes followed by the disk bytes (the Incus fingerprint). */
  'combined_disk-kvm-img_sha256'?: string;
  /** On the incus.tar.xz item of a container image: sha256 of the metadata bytes followed by the squashfs bytes. */
  combined_squashfs_sha256?: string;
}

export interface StreamsProduct {
  /** Comma-separated alias names. */
  aliases: string;
  arch: string;
  os: string;
  release: string;
  release_title: string;
  variant: string;
  /** Version keys start with YYYYMMDD, or the client drops the version. */
  versions: Record<string, { items: Record<string, StreamsItem> }>;
}

export interface StreamsImages {
  format: 'products:1.0';
  content_id: 'images';
  datatype: 'image-downloads';
  products: Record<string, StreamsProduct>;
}
