/**
 * Incus names architectures the way Debian does in Simple Streams products (`amd64`, `arm64`,
 * ...); its client maps every other spelling it knows (`x86_64`, `aarch64`, ...) to the same
 * machine. An architecture it does not know makes it skip the product silently.
 */
const INCUS_ARCHITECTURES: Record<string, readonly string[]> = {
  amd64: ['amd64', 'x86_64', 'x64', 'generic_64', 'x86_64_v1', 'x86_64_v2', 'x86_64_v3', 'x86_64_v4'],
  i386: ['i386', 'i686', 'i586', '386', 'x86', 'generic_32'],
  arm64: ['arm64', 'aarch64', 'arm64_generic'],
  armhf: ['armhf', 'armv7l', 'armv7', 'armhfp', 'armv7a_hardfp', 'armv7a_vfpv3_hardfp'],
  armel: ['armel', 'armv6l', 'arm'],
  ppc64el: ['ppc64el', 'ppc64le'],
  ppc64: ['ppc64', 'powerpc64'],
  powerpc: ['powerpc', 'ppc'],
  s390x: ['s390x'],
  riscv64: ['riscv64'],
  mips64el: ['mips64el', 'mips64le', 'mips64'],
  mipsel: ['mipsel', 'mipsle', 'mips'],
  loong64: ['loong64', 'loongarch64'],
};

const BY_SPELLING = new Map(Object.entries(INCUS_ARCHITECTURES).flatMap(([name, spellings]) => spellings.map((s) => [s, name] as const)));

/** The Simple Streams name of an architecture, or undefined when Incus does not know it. */
export const incusArchitecture = (name: string): string | undefined => BY_SPELLING.get(name.toLowerCase());
