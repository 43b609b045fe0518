// What the CLI meets of the kernel besides maps and pins, through the datapath room so that
// nothing above it imports ffi/: the kernel layer's error types and the clock the datapath
// stamps tracked connections with.
export { BpfError, LibraryError, SysError } from "../../ffi/errors.ts";
export { monotonicNs } from "../../ffi/libc.ts";
