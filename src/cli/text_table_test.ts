// Unit tests for table rendering.
import assert from "node:assert/strict";
import { renderFields, renderTable } from "./text_table.ts";

Deno.test("renderTable() aligns columns under a header, without trailing blanks", () => {
  const out = renderTable(
    [{ header: "IP" }, { header: "IDENTITY", align: "right" }, { header: "NOTE" }],
    [["10.13.0.2", "1001", ""], ["10.13.0.100", "7", "x"]],
  );
  assert.equal(
    out,
    "IP           IDENTITY  NOTE\n" +
      "10.13.0.2        1001\n" +
      "10.13.0.100         7  x\n",
  );
});

Deno.test("renderTable() prints only the header for no rows, and widens for long cells", () => {
  assert.equal(renderTable([{ header: "SRC" }, { header: "DST" }], []), "SRC  DST\n");
  assert.equal(
    renderTable([{ header: "A", align: "right" }, { header: "B" }], [["12345", "b"]]),
    "    A  B\n12345  b\n",
  );
});

Deno.test("renderFields() aligns values after their names", () => {
  assert.equal(
    renderFields([["version", "1"], ["pin directory", "/p"]]),
    "version        1\npin directory  /p\n",
  );
  assert.equal(renderFields([]), "");
});
