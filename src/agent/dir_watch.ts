// Tells when a directory's entries change (a file written, renamed in, removed, a symlink
// swapped): inotify on the directory alone, read off the main thread. Which entry changed is
// not reported: the manifest source reads the directory again either way.
import {
  closeFd,
  drainFd,
  IN_ATTRIB,
  IN_CLOSE_WRITE,
  IN_CREATE,
  IN_DELETE,
  IN_DELETE_SELF,
  IN_MODIFY,
  IN_MOVE_SELF,
  IN_MOVED_FROM,
  IN_MOVED_TO,
  inotifyWatch,
  pollReadable,
} from "../../ffi/libc.ts";

const MASK = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE |
  IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF;
/** How long one wait lasts: the most close() waits for the loop to notice. */
const WAIT_MS = 200;

export interface DirWatch {
  close(): Promise<void>;
}

/** Calls `changed` after each burst of events in `dir`. */
export function watchDir(dir: string, changed: () => void): DirWatch {
  const fd = inotifyWatch(dir, MASK);
  let open = true;
  const loop = (async () => {
    while (open) {
      if (!(await pollReadable(fd, WAIT_MS))) continue;
      if (!open) break;
      if (drainFd(fd) > 0) changed();
    }
  })();
  return {
    async close() {
      open = false;
      await loop.catch(() => {});
      closeFd(fd);
    },
  };
}
