// Where `ebpfcni policy import FILE` spends its time: the steps of src/cli/policy.ts's import
// command, called one by one through the same product functions in a fresh process started
// like the plugin (bench/policy.ts runs it through the launcher), each timed:
//   importMs  loading the modules        readMs   reading FILE as UTF-8 text
//   parseMs   parsePolicyFile (JSON.parse, validation of every entry, de-duplication)
//   countMs   countEntries (batch lookups over the map)
//   listMs    PolicyMap.list() (all allow entries of the map)
//   planMs    planPolicyImport         writeMs  allowMany in chunks of IMPORT_CHUNK
//   jsonParseMs  JSON.parse of the text alone (part of what parseMs covers), for scale
// Then what `policy allow` does after its one update, on the now-full map:
//   listFullMs   PolicyMap.list() of every entry
//   renderFullMs policyRecords (sort) + renderTable of all of them, as the CLI prints them
// Arguments: FILE PIN_DIR. The map must not hold the file's entries yet; they are written.
const t0 = performance.now();
const { requireMap } = await import("../src/cli/pin_require.ts");
const { closePin } = await import("../src/datapath/pins.ts");
// countEntries has lived in src/datapath/maps.ts and in src/cli/entries.ts.
const mapsMod = await import("../src/datapath/maps.ts") as Record<string, unknown>;
type Count = (fd: number, spec: unknown) => number;
const countEntries = (mapsMod.countEntries ??
  // @ts-ignore: the older location; absent in newer trees.
  (await import("../src/cli/entries.ts")).countEntries) as Count;
const { IMPORT_CHUNK } = await import("../src/cli/import_file.ts");
const { parsePolicyFile, planPolicyImport } = await import("../src/identity_mode/import_plan.ts");
const { PolicyMap } = await import("../src/datapath/maps.ts");
const { POLICY_MAP } = await import("../src/spec/bpf_layout.ts");
const { policyRecords } = await import("../src/identity_mode/map_records.ts");
const { renderTable } = await import("../src/cli/text_table.ts");
const out: Record<string, number> = { importMs: performance.now() - t0 };

const [file, pinDir] = Deno.args;
const step = <T>(name: string, fn: () => T): T => {
  const t = performance.now();
  const r = fn();
  out[name] = performance.now() - t;
  return r;
};
const text = step(
  "readMs",
  () => new TextDecoder("utf-8", { fatal: true }).decode(Deno.readFileSync(file!)),
);
const parsed = step("parseMs", () => parsePolicyFile(text));
const pin = requireMap(pinDir!, POLICY_MAP);
try {
  const m = new PolicyMap(pin.fd);
  const entries = step("countMs", () => countEntries(pin.fd, POLICY_MAP));
  const allowed = step("listMs", () => m.pairs());
  const plan = step(
    "planMs",
    () => planPolicyImport(allowed, entries, parsed.entries, POLICY_MAP.maxEntries),
  );
  step("writeMs", () => {
    for (let at = 0; at < plan.write.length; at += IMPORT_CHUNK) {
      m.allowMany(plan.write.slice(at, at + IMPORT_CHUNK));
    }
  });
  out.written = plan.write.length;
  out.totalInScriptMs = performance.now() - t0;
  const all = step("listFullMs", () => m.pairs());
  const rendered = step("renderFullMs", () =>
    renderTable(
      [{ header: "SRC", align: "right" }, { header: "DST", align: "right" }],
      policyRecords(all).map((r) => [String(r.src), String(r.dst)]),
    ));
  out.listedEntries = all.length;
  out.renderedBytes = rendered.length;
} finally {
  closePin(pin);
}
step("jsonParseMs", () => JSON.parse(text));
console.log(JSON.stringify(out));
