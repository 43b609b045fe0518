// Just enough ELF64 reading to predict a BPF program's kernel tag from its object file.
import { createHash } from "node:crypto";

export interface ElfSection {
  name: string;
  type: number;
  offset: number;
  size: number;
  link: number;
  info: number;
  entsize: number;
}

const SHT_REL = 9;
const BPF_LD_IMM64 = 0x18;
const BPF_PSEUDO_MAP_FD = 1;
const BPF_PSEUDO_MAP_VALUE = 2;

export function readElfSections(b: Uint8Array): ElfSection[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (v.getUint32(0) !== 0x7f454c46 || b[4] !== 2 || b[5] !== 1) {
    throw new Error("Not a little-endian ELF64 object");
  }
  const shoff = Number(v.getBigUint64(0x28, true));
  const shentsize = v.getUint16(0x3a, true);
  const shnum = v.getUint16(0x3c, true);
  const shstrndx = v.getUint16(0x3e, true);
  const raw = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    raw.push({
      nameOff: v.getUint32(o, true),
      type: v.getUint32(o + 4, true),
      offset: Number(v.getBigUint64(o + 0x18, true)),
      size: Number(v.getBigUint64(o + 0x20, true)),
      link: v.getUint32(o + 0x28, true),
      info: v.getUint32(o + 0x2c, true),
      entsize: Number(v.getBigUint64(o + 0x38, true)),
    });
  }
  const strtab = raw[shstrndx];
  if (!strtab) throw new Error("ELF has no section name table");
  const dec = new TextDecoder();
  return raw.map((s) => {
    const start = strtab.offset + s.nameOff;
    let end = start;
    while (b[end] !== 0) end++;
    const { nameOff: _, ...rest } = s;
    return { name: dec.decode(b.subarray(start, end)), ...rest };
  });
}

/** The tags the kernel may compute at load (bpf_prog_calc_tag): a digest of the
 * instructions with map references' immediates zeroed, first 8 bytes. Kernels before 6.18
 * use SHA-1; 6.18 (program signing) moved to SHA-256, so both are returned. libbpf turns each relocated
 * ld_imm64 into a map fd (maps) or map value (global data) reference, so set src_reg to
 * match before hashing. */
export function programTags(
  b: Uint8Array,
  sections: ElfSection[],
  progSection: string,
): string[] {
  const idx = sections.findIndex((s) => s.name === progSection);
  const prog = sections[idx];
  if (!prog) throw new Error(`ELF has no section "${progSection}"`);
  const insns = b.slice(prog.offset, prog.offset + prog.size);
  const iv = new DataView(insns.buffer);
  const rel = sections.find((s) => s.type === SHT_REL && s.info === idx);
  if (rel) {
    const symtab = sections[rel.link];
    if (!symtab) throw new Error("ELF relocation section has no symbol table");
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let o = rel.offset; o < rel.offset + rel.size; o += 16) {
      const at = Number(v.getBigUint64(o, true));
      const sym = Number(v.getBigUint64(o + 8, true) >> 32n);
      const shndx = v.getUint16(symtab.offset + sym * 24 + 6, true);
      if (insns[at] !== BPF_LD_IMM64) continue; // calls to subprograms keep their imm
      const target = sections[shndx]?.name ?? "";
      const pseudo = target === ".maps" ? BPF_PSEUDO_MAP_FD : BPF_PSEUDO_MAP_VALUE;
      insns[at + 1] = ((insns[at + 1] ?? 0) & 0x0f) | (pseudo << 4);
      iv.setInt32(at + 4, 0, true);
      iv.setInt32(at + 12, 0, true);
    }
  }
  return ["sha256", "sha1"].map((h) => createHash(h).update(insns).digest("hex").slice(0, 16));
}
