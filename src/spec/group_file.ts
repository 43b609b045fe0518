// /etc/group (group(5)): name:password:GID:members, one group a line. Pure.

/** The GID of group `name` in the text of a group file, or undefined. */
export function groupIdIn(text: string, name: string): number | undefined {
  for (const line of text.split("\n")) {
    const [n, _pw, gid] = line.split(":");
    if (n === name && gid !== undefined && /^[0-9]+$/.test(gid)) return Number(gid);
  }
  return undefined;
}
