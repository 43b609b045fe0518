// Aligned plain-text tables for list and status output: a header row, columns separated by
// two spaces, no trailing blanks. Pure; the caller writes the string.

export interface Column {
  header: string;
  /** Numbers read best right-aligned; text left-aligned (the default). */
  align?: "left" | "right";
}

/** Renders `rows` under `columns`, each line ending in "\n". Missing cells render empty. */
export function renderTable(
  columns: readonly Column[],
  rows: readonly (readonly string[])[],
): string {
  const widths = columns.map((c) => c.header.length);
  for (const row of rows) {
    for (let i = 0; i < columns.length; i++) {
      const n = (row[i] ?? "").length;
      if (n > (widths[i] ?? 0)) widths[i] = n;
    }
  }
  const line = (cells: readonly string[]): string => {
    const parts = columns.map((c, i) => {
      const cell = cells[i] ?? "";
      const w = widths[i] ?? 0;
      return c.align === "right" ? cell.padStart(w) : cell.padEnd(w);
    });
    return parts.join("  ").trimEnd() + "\n";
  };
  const out = [line(columns.map((c) => c.header))];
  for (const row of rows) out.push(line(row));
  return out.join("");
}

/** Renders "name  value" lines with the values aligned, no header. */
export function renderFields(fields: readonly (readonly [string, string])[]): string {
  const w = Math.max(0, ...fields.map(([k]) => k.length));
  return fields.map(([k, v]) => `${k.padEnd(w)}  ${v}`.trimEnd() + "\n").join("");
}
