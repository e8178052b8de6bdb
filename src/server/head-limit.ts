// The request-head size handed to the runtimes' own parsers: above the proxy's limits, so that
// our own answers (431 for fields, 414 for a target, each at most 16 KiB) come first.

/** Head bytes a listener's parser accepts before refusing by itself, for `maxHeaderBytes` (<= 16 KiB). */
export const parserHeadLimit = (maxHeaderBytes: number): number => maxHeaderBytes + 16384 + 1024;
