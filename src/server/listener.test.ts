// Runs the listener conformance cases (listener.cases.ts) against this runtime's listener:
// Bun: our server on Bun.listen; Node: node:http; Deno: our server on node:net.

import { listenerCases } from './listener.cases.ts';
import { detectRuntime } from './runtime.ts';

const runtime = detectRuntime();

if (runtime === 'node') {
  const { listenNode, nodeListenerFeatures } = await import('./node.ts');
  listenerCases('node:http', listenNode, nodeListenerFeatures);
} else if (runtime === 'deno') {
  const { listenNetEngine } = await import('./net-engine.ts');
  const { bunNativeListenerFeatures } = await import('./bun-native.ts');
  listenerCases('engine on node:net', listenNetEngine, bunNativeListenerFeatures);
} else {
  const { listenBunNative, bunNativeListenerFeatures } = await import('./bun-native.ts');
  listenerCases('bun-native', listenBunNative, bunNativeListenerFeatures);
}
