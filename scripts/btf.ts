// Just enough BTF reading (the kernel's Documentation/bpf/btf.rst, include/uapi/linux/btf.h)
// to generate the TypeScript side of the datapath's contract from an object's .BTF section.
// Read here rather than through `bpftool btf dump -j`: bpftool 7.1 prints an unsigned 32-bit
// enum value sign-extended to 64 bits, past what a JSON number holds exactly.
import type { ElfSection } from "./elf.ts";

const BTF_MAGIC = 0xeb9f;

/** BTF_KIND_* by number, as bpftool names them. */
const KINDS = [
  "UNKN",
  "INT",
  "PTR",
  "ARRAY",
  "STRUCT",
  "UNION",
  "ENUM",
  "FWD",
  "TYPEDEF",
  "VOLATILE",
  "CONST",
  "RESTRICT",
  "FUNC",
  "FUNC_PROTO",
  "VAR",
  "DATASEC",
  "FLOAT",
  "DECL_TAG",
  "TYPE_TAG",
  "ENUM64",
] as const;
export type BtfKind = (typeof KINDS)[number];

export interface BtfMember {
  name: string;
  type: number;
  /** Offset from the start of the struct, in bits. */
  bitOffset: number;
  /** Bitfield size in bits; 0 for a plain member. */
  bitSize: number;
}

export interface BtfEnumValue {
  name: string;
  value: bigint;
}

export interface BtfType {
  id: number;
  kind: BtfKind;
  name: string;
  /** INT, STRUCT, UNION, ENUM, DATASEC, FLOAT: size in bytes. */
  size: number;
  /** PTR, TYPEDEF, qualifiers, FUNC, VAR: the type referred to. */
  type: number;
  /** FUNC (0 static, 1 global, 2 extern) and VAR (0 static, 1 global) linkage. */
  linkage: number;
  /** ARRAY */
  elemType: number;
  nelems: number;
  /** STRUCT, UNION */
  members: BtfMember[];
  /** ENUM, ENUM64 */
  values: BtfEnumValue[];
  /** DATASEC: the VAR type ids of the section, in offset order. */
  vars: number[];
}

/** The types of an object's .BTF section, by id (0 is void). */
export class Btf {
  readonly types: readonly BtfType[];

  constructor(types: BtfType[]) {
    this.types = types;
  }

  type(id: number): BtfType {
    const t = this.types[id];
    if (!t || id === 0) throw new Error(`BTF has no type ${id}`);
    return t;
  }

  /** The one type of `kind` named `name`. */
  find(kind: BtfKind, name: string): BtfType {
    const found = this.types.filter((t) => t.kind === kind && t.name === name);
    if (found.length !== 1) {
      throw new Error(`BTF has ${found.length} ${kind} types named "${name}", expected one`);
    }
    return found[0]!;
  }

  /** Follows typedefs and qualifiers to the type that has a layout. */
  resolve(id: number): BtfType {
    let t = this.type(id);
    while (["TYPEDEF", "VOLATILE", "CONST", "RESTRICT", "TYPE_TAG"].includes(t.kind)) {
      t = this.type(t.type);
    }
    return t;
  }

  sizeOf(id: number): number {
    const t = this.resolve(id);
    if (t.kind === "ARRAY") return t.nelems * this.sizeOf(t.elemType);
    if (t.kind === "PTR") return 8;
    if (!["INT", "STRUCT", "UNION", "ENUM", "ENUM64", "FLOAT"].includes(t.kind)) {
      throw new Error(`BTF ${t.kind} "${t.name}" (type ${t.id}) has no size`);
    }
    return t.size;
  }

  /** The name C would spell the type with: `__u32`, `struct ct_key`. */
  cName(id: number): string {
    const t = this.type(id);
    if (["STRUCT", "UNION", "ENUM", "ENUM64"].includes(t.kind)) {
      return `${t.kind === "ENUM64" ? "enum" : t.kind.toLowerCase()} ${t.name || "(anon)"}`;
    }
    if (t.kind === "PTR") return `${this.cName(t.type)} *`;
    if (t.kind === "ARRAY") return `${this.cName(t.elemType)}[${t.nelems}]`;
    return t.name || t.kind.toLowerCase();
  }
}

/** Parses the .BTF section of an ELF object. */
export function readBtf(b: Uint8Array, sections: ElfSection[]): Btf {
  const sec = sections.find((s) => s.name === ".BTF");
  if (!sec) throw new Error("ELF object has no .BTF section (built without -g?)");
  const v = new DataView(b.buffer, b.byteOffset + sec.offset, sec.size);
  if (v.getUint16(0, true) !== BTF_MAGIC) throw new Error("The .BTF section has no BTF magic");
  const hdrLen = v.getUint32(4, true);
  const typeOff = hdrLen + v.getUint32(8, true);
  const typeLen = v.getUint32(12, true);
  const strOff = hdrLen + v.getUint32(16, true);
  const dec = new TextDecoder();
  const str = (off: number) => {
    const start = sec.offset + strOff + off;
    let end = start;
    while (b[end] !== 0) end++;
    return dec.decode(b.subarray(start, end));
  };
  const u32 = (at: number) => v.getUint32(at, true);
  const types: BtfType[] = [blank(0, "UNKN", "")];
  let at = typeOff;
  while (at < typeOff + typeLen) {
    const info = u32(at + 4);
    const vlen = info & 0xffff;
    const kind = KINDS[(info >>> 24) & 0x1f];
    if (!kind) throw new Error(`BTF type ${types.length} has unknown kind ${(info >>> 24) & 0x1f}`);
    const kflag = info >>> 31;
    const t = blank(types.length, kind, str(u32(at)));
    const sizeOrType = u32(at + 8);
    at += 12;
    switch (kind) {
      case "INT":
        t.size = sizeOrType;
        at += 4;
        break;
      case "ARRAY":
        t.elemType = u32(at);
        t.nelems = u32(at + 8);
        at += 12;
        break;
      case "STRUCT":
      case "UNION":
        t.size = sizeOrType;
        for (let i = 0; i < vlen; i++, at += 12) {
          const off = u32(at + 8);
          t.members.push({
            name: str(u32(at)),
            type: u32(at + 4),
            bitOffset: kflag ? off & 0xffffff : off,
            bitSize: kflag ? off >>> 24 : 0,
          });
        }
        break;
      case "ENUM":
        t.size = sizeOrType;
        for (let i = 0; i < vlen; i++, at += 8) {
          // kind_flag set: signed values; clear: unsigned (what clang emits for ours).
          const raw = kflag ? v.getInt32(at + 4, true) : u32(at + 4);
          t.values.push({ name: str(u32(at)), value: BigInt(raw) });
        }
        break;
      case "ENUM64":
        t.size = sizeOrType;
        for (let i = 0; i < vlen; i++, at += 12) {
          const value = (BigInt(u32(at + 8)) << 32n) | BigInt(u32(at + 4));
          t.values.push({ name: str(u32(at)), value: kflag ? BigInt.asIntN(64, value) : value });
        }
        break;
      case "FUNC_PROTO":
        t.type = sizeOrType;
        at += 8 * vlen;
        break;
      case "FUNC":
        t.type = sizeOrType;
        t.linkage = vlen;
        break;
      case "VAR":
        t.type = sizeOrType;
        t.linkage = u32(at);
        at += 4;
        break;
      case "DATASEC":
        t.size = sizeOrType;
        for (let i = 0; i < vlen; i++, at += 12) t.vars.push(u32(at));
        break;
      case "DECL_TAG":
        t.type = sizeOrType;
        at += 4;
        break;
      case "FLOAT":
        t.size = sizeOrType;
        break;
      default: // PTR, FWD, TYPEDEF, qualifiers, TYPE_TAG
        t.type = sizeOrType;
    }
    types.push(t);
  }
  return new Btf(types);
}

function blank(id: number, kind: BtfKind, name: string): BtfType {
  return {
    id,
    kind,
    name,
    size: 0,
    type: 0,
    linkage: 0,
    elemType: 0,
    nelems: 0,
    members: [],
    values: [],
    vars: [],
  };
}
