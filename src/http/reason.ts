// Reason phrases (RFC 9112 §4): passed on and written only when they are HTAB, SP and visible
// ASCII, since one carrying CR or LF would end its line (header injection). The one home of
// that rule for our Bun client and server and for undici.

/** HTAB, SP and visible ASCII only. */
export const PLAIN_REASON = /^[\t\x20-\x7e]*$/;

/** `text` when it is a plain reason phrase, else '' (the status code's standard reason is then used). */
export function plainReason(text: string | undefined): string {
  return text !== undefined && PLAIN_REASON.test(text) ? text : '';
}
