// The text of `switchyard --help`: the CLI reference in one place.

export const USAGE = `switchyard: a reverse proxy configured by a typed routes.ts

Usage:
  switchyard [serve] [--routes FILE] [--listen HOST:PORT]
      Run the proxy. FILE defaults to ./routes.ts. --listen overrides the
      file's \`listen\` (default 0.0.0.0:80); port 0 picks a free port.
  switchyard check [FILE]
      Validate a routes file: exit 0 if it is valid, else print every
      problem and exit 1.
  switchyard init [DIR]
      Write a starter routes.ts, switchyard.d.ts (the types, for editor
      completion without node_modules) and tsconfig.json into DIR (default .).
  switchyard --help | -h
  switchyard --version | -v

Logs are JSON lines on stdout; the first one says where the proxy listens.
SIGTERM or SIGINT: stop accepting, finish requests in flight (timeouts.shutdownGraceMs), exit 0.
Exit codes: 0 ok, 1 bad routes file or runtime failure, 2 bad command line.
`;
