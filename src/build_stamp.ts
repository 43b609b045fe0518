// Which build of the program this process runs: the executable and the main module (the
// launcher's bundle entry), by path, size and modification time. Two processes with the same
// stamp run the same files; the agent compares the plugin's with the one it read when it
// started, so a binary upgraded under a running agent is not half old, half new.
export function buildStamp(): string {
  const paths = [Deno.execPath()];
  try {
    const main = new URL(Deno.mainModule);
    if (main.protocol === "file:") paths.push(decodeURIComponent(main.pathname));
  } catch {
    // no main module (a test): the executable alone
  }
  return paths.map((p) => {
    try {
      const st = Deno.statSync(p);
      return `${p}:${st.size}:${st.mtime?.getTime() ?? "?"}`;
    } catch {
      return `${p}:?`;
    }
  }).join(" ");
}
