// Short plain-text answers the proxy gives itself (errors, misses). Bodies say what happened
// without naming internal addresses; the log line names them.

const TEXT = { 'content-type': 'text/plain; charset=utf-8' };

export function plain(status: number, message: string): Response {
  return new Response(`${message}\n`, { status, headers: TEXT });
}
