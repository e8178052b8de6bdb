// The library surface: types for routes.ts, `defineRoutes`, and the pieces an in-process test
// needs to drive the real app with `app.request(...)`.
import type { Config } from './config/types.ts';

export { createApp } from './app.ts';
export { compileConfig } from './config/compile.ts';
export { validateConfig } from './config/schema.ts';
export type { Config, Limits, Route, Timeouts } from './config/types.ts';

/** Identity function that gives a routes object its type (the same as `satisfies Config`). */
export function defineRoutes<const C extends Config>(config: C): C {
  return config;
}
