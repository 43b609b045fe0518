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

const SHT_SYMTAB = 2;
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
/** Names of the symbols defined in section `name` (e.g. the maps of ".maps"), in order. */
export function sectionSymbols(b: Uint8Array, sections: ElfSection[], name: string): string[] {
  const idx = sections.findIndex((s) => s.name === name);
  const symtab = sections.find((s) => s.type === SHT_SYMTAB);
  const strtab = symtab ? sections[symtab.link] : undefined;
  if (idx < 0 || !symtab || !strtab) return [];
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const dec = new TextDecoder();
  const out: { name: string; value: number }[] = [];
  for (let o = symtab.offset; o < symtab.offset + symtab.size; o += 24) {
    if (v.getUint16(o + 6, true) !== idx) continue;
    const nameOff = v.getUint32(o, true);
    let end = strtab.offset + nameOff;
    while (b[end] !== 0) end++;
    out.push({
      name: dec.decode(b.subarray(strtab.offset + nameOff, end)),
      value: Number(v.getBigUint64(o + 8, true)),
    });
  }
  return out.sort((a, b) => a.value - b.value).map((s) => s.name);
}

/** The function symbol `name`: its section index, offset and size in bytes. */
function funcSymbol(b: Uint8Array, sections: ElfSection[], name: string) {
  const symtab = sections.find((s) => s.type === SHT_SYMTAB);
  const strtab = symtab ? sections[symtab.link] : undefined;
  if (!symtab || !strtab) throw new Error("ELF has no symbol table");
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const dec = new TextDecoder();
  for (let o = symtab.offset; o < symtab.offset + symtab.size; o += 24) {
    const nameOff = v.getUint32(o, true);
    let end = strtab.offset + nameOff;
    while (b[end] !== 0) end++;
    if (dec.decode(b.subarray(strtab.offset + nameOff, end)) !== name) continue;
    return {
      shndx: v.getUint16(o + 6, true),
      value: Number(v.getBigUint64(o + 8, true)),
      size: Number(v.getBigUint64(o + 16, true)),
    };
  }
  throw new Error(`ELF has no symbol "${name}"`);
}

export function programTags(b: Uint8Array, sections: ElfSection[], program: string): string[] {
  const sym = funcSymbol(b, sections, program);
  const idx = sym.shndx;
  const prog = sections[idx];
  if (!prog) throw new Error(`ELF symbol "${program}" has no section`);
  const start = prog.offset + sym.value;
  const insns = b.slice(start, start + sym.size);
  const iv = new DataView(insns.buffer);
  const rel = sections.find((s) => s.type === SHT_REL && s.info === idx);
  if (rel) {
    const symtab = sections[rel.link];
    if (!symtab) throw new Error("ELF relocation section has no symbol table");
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let o = rel.offset; o < rel.offset + rel.size; o += 16) {
      const at = Number(v.getBigUint64(o, true)) - sym.value;
      if (at < 0 || at >= sym.size) continue; // another program of the section
      const targetSym = Number(v.getBigUint64(o + 8, true) >> 32n);
      const shndx = v.getUint16(symtab.offset + targetSym * 24 + 6, true);
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
