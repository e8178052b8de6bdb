// Judging a disagreement between our engine and llhttp on one input (docs/hardening.md, "The
// differential fuzzer"): BUG when switchyard acts on an interpretation the reference does not
// have, STRICTER when switchyard refuses what llhttp takes, LAXER when switchyard takes what
// llhttp refuses for a reason that does not move message boundaries, and the known-benign rest.
import type { Outcome, SeenRequest } from './outcome.ts';

/** UNSTABLE: a BUG verdict the same input did not give again (the harness's timing; see campaign.ts). */
export type Verdict = 'AGREE' | 'BUG' | 'STRICTER' | 'LAXER' | 'BENIGN' | 'UNSTABLE';

export interface Judgement {
  readonly verdict: Verdict;
  /** A short stable name for the kind of disagreement (counts and regression file names). */
  readonly kind: string;
  readonly detail: string;
}

/**
 * llhttp errors about where a message ends, or about the line and field syntax that decides
 * it: a request we accept despite one of these may be framed differently behind a node proxy
 * or in front of a node upstream, so accepting it is a BUG, not a leniency.
 */
const FRAMING_ERRORS = new Set([
  'HPE_INVALID_CONTENT_LENGTH',
  'HPE_UNEXPECTED_CONTENT_LENGTH',
  'HPE_INVALID_TRANSFER_ENCODING',
  'HPE_INVALID_CHUNK_SIZE',
  'HPE_CR_EXPECTED',
  'HPE_LF_EXPECTED',
  'HPE_STRICT',
  'HPE_INVALID_HEADER_TOKEN',
  'HPE_INVALID_CONSTANT',
  'HPE_UNEXPECTED_SPACE',
]);

/**
 * Whether taking what llhttp refused can move a boundary. Not when the request came from the
 * grammar unmutated (the grammar writes only what RFC 9112 allows, so llhttp is stricter than
 * the RFC there: BWS in chunk lines, say), nor for a Content-Length whose value is one clean
 * number once the OWS around it is gone (RFC 9110 §5.5: OWS is not part of a value).
 */
function movesBoundary(code: string, mutation: string | undefined, seen: SeenRequest | undefined): boolean {
  if (!FRAMING_ERRORS.has(code)) return false;
  if (mutation === 'valid' || mutation === 'leading-crlf') return false;
  if (code === 'HPE_INVALID_CONTENT_LENGTH' && seen !== undefined) {
    const length = seen.fields.find(([name]) => name === 'content-length')?.[1];
    if (length !== undefined && /^\d+$/.test(length)) return false;
  }
  return true;
}

const agree = (detail = ''): Judgement => ({ verdict: 'AGREE', kind: 'agree', detail });
const judged = (verdict: Verdict, kind: string, detail: string): Judgement => ({ verdict, kind, detail });

/**
 * A refusal inside a chunked body that concerns what the engine drops rather than reads for
 * framing: chunk extensions, and trailer fields (both parsed the head already, so a
 * Content-Length or Transfer-Encoding complaint there is about a trailer; RFC 9110 §6.5.1 bars
 * trailers from framing, and the engine drops them).
 */
const outsideFraming = (code: string, reason: string) =>
  /extension/i.test(reason) || code === 'HPE_INVALID_TRANSFER_ENCODING' || code === 'HPE_INVALID_CONTENT_LENGTH' || code === 'HPE_UNEXPECTED_CONTENT_LENGTH';

/** The head of a request as compared: everything but the body. */
const headOf = (r: SeenRequest) => JSON.stringify([r.method, r.target, r.version, r.fields]);

/**
 * Removes what is known to differ for reasons that are not parsing:
 * - llhttp refuses bytes after a message that closes the connection (HPE_CLOSED_CONNECTION);
 *   our engine stops reading there. Both end the connection after that message.
 * - A request whose body broke and was then refused: the engine holds a chunked request until
 *   its first size line parsed, so llhttp may show the head of a request the engine refused
 *   before handing it on. Kept when both sides have it.
 */
function normalise(engine: Outcome, ref: Outcome): { e: SeenRequest[]; r: SeenRequest[]; refRefusal: string | null; refEndedByClose: boolean } {
  let refRefusal = ref.refusal?.code ?? null;
  let refEndedByClose = false;
  if (refRefusal === 'HPE_CLOSED_CONNECTION') {
    refRefusal = null;
    refEndedByClose = true;
  }
  const e = [...engine.requests];
  const r = [...ref.requests];
  const last = r[r.length - 1];
  if (
    last !== undefined &&
    !last.complete &&
    refRefusal !== null &&
    engine.refusal !== null &&
    engine.refusal.after === r.length - 1 &&
    e.length === r.length - 1
  )
    r.pop();
  return { e, r, refRefusal, refEndedByClose };
}

/** Compares what each side did with the same bytes. */
export function classify(engine: Outcome, ref: Outcome, mutations: readonly string[] = []): Judgement {
  // The engine's own promise, whatever the reference did: nothing after a refusal.
  const refusedAt = engine.order.indexOf('x');
  if (refusedAt >= 0 && engine.order.indexOf('r', refusedAt) >= 0)
    return judged('BUG', 'request-after-refusal', `the app saw a request after the engine refused with ${engine.refusal?.code}`);

  const { e, r, refRefusal, refEndedByClose } = normalise(engine, ref);
  const n = Math.min(e.length, r.length);
  for (let i = 0; i < n; i++) {
    const a = e[i] as SeenRequest;
    const b = r[i] as SeenRequest;
    if (headOf(a) !== headOf(b)) {
      const what = a.method !== b.method ? 'method' : a.target !== b.target ? 'target' : a.version !== b.version ? 'version' : 'fields';
      return judged('BUG', `head-differs:${what}`, `request ${i}: engine ${headOf(a)} / llhttp ${headOf(b)}`);
    }
    if (a.complete && b.complete && a.body !== b.body)
      return judged('BUG', 'body-differs', `request ${i}: engine body ${JSON.stringify(a.body)} / llhttp ${JSON.stringify(b.body)}`);
    if (a.complete !== b.complete) {
      if (a.complete) {
        // We read a body to its end that llhttp found broken (or still waits for).
        // llhttp's partial body a prefix of ours: both read the chunks alike up to its refusal
        // (a size read differently would show as different bytes), so what it refused is the
        // syntax of a line, not where it ends (BWS before a chunk extension, say).
        const consistent = a.body.startsWith(b.body);
        if (refRefusal !== null && movesBoundary(refRefusal, mutations[i], a) && !outsideFraming(refRefusal, ref.refusal?.reason ?? '') && !consistent)
          return judged(
            'BUG',
            `body-accepted:${refRefusal}`,
            `request ${i}: engine read body ${JSON.stringify(a.body)}, llhttp refused: ${ref.refusal?.reason}`,
          );
        if (refRefusal !== null) return judged('LAXER', `body-accepted:${refRefusal}`, `request ${i}: llhttp refused mid-body: ${ref.refusal?.reason}`);
        return judged(
          'BUG',
          'body-ends-early',
          `request ${i}: engine's body ended (${JSON.stringify(a.body)}), llhttp still reads (${JSON.stringify(b.body)})`,
        );
      }
      if (engine.refusal !== null)
        return judged(
          'STRICTER',
          `body-refused:${engine.refusal.code}`,
          `request ${i}: engine refused mid-body (${engine.refusal.reason}), llhttp read ${JSON.stringify(b.body)}`,
        );
      return judged('BUG', 'body-ends-late', `request ${i}: llhttp's body ended (${JSON.stringify(b.body)}), engine still reads (${JSON.stringify(a.body)})`);
    }
  }
  if (e.length === r.length) {
    const eRefused = engine.refusal !== null;
    const rRefused = refRefusal !== null;
    if (eRefused === rRefused) return agree(eRefused ? `both refused: ${engine.refusal?.code} / ${refRefusal}` : '');
    if (eRefused)
      return judged(
        'STRICTER',
        `refused:${engine.refusal?.reason}`,
        `engine refused (${engine.refusal?.code} ${engine.refusal?.reason}) after ${e.length} request(s); llhttp did not`,
      );
    // llhttp refused a head the engine still buffers (it refuses once the head is whole, or at the head timeout).
    return judged('BENIGN', `ref-refused-pending:${refRefusal}`, `llhttp refused (${ref.refusal?.reason}) where the engine waits for more bytes`);
  }
  if (e.length > r.length) {
    const extra = e[r.length] as SeenRequest;
    if (refRefusal !== null) {
      if (movesBoundary(refRefusal, mutations[r.length], extra))
        return judged('BUG', `accepted-refused:${refRefusal}`, `engine took ${headOf(extra)}; llhttp refused: ${ref.refusal?.reason}`);
      return judged('LAXER', `accepted-refused:${refRefusal}`, `engine took ${headOf(extra)}; llhttp refused: ${ref.refusal?.reason}`);
    }
    // llhttp reads a PRI request's head as the start of the HTTP/2 preface and waits for `SM`.
    if (extra.method === 'PRI') return judged('LAXER', 'accepted-pri', `engine took ${headOf(extra)}; llhttp waits for the rest of an HTTP/2 preface`);
    if (refEndedByClose) return judged('BUG', 'request-after-close', `engine took ${headOf(extra)} after a message that closes the connection`);
    return judged('BUG', 'boundary', `engine saw request ${r.length} ${headOf(extra)} where llhttp still reads the previous message`);
  }
  const missing = r[e.length] as SeenRequest;
  if (engine.refusal !== null)
    return judged(
      'STRICTER',
      `refused:${engine.refusal.reason}`,
      `engine refused (${engine.refusal.code} ${engine.refusal.reason}); llhttp took ${headOf(missing)}`,
    );
  if (engine.closed && ref.requests[e.length - 1] !== undefined)
    return judged('BENIGN', 'ref-after-close', `engine closed after request ${e.length - 1}; llhttp went on to ${headOf(missing)}`);
  return judged('BUG', 'boundary', `llhttp saw request ${e.length} ${headOf(missing)} where the engine still reads the previous message`);
}
