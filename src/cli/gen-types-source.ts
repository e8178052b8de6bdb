// Regenerates ./types-source.ts from ../config/types.ts (`make gen`); a unit test fails if the
// two drift. Run with any of the three runtimes (node via tsx).
import { readFileSync, writeFileSync } from 'node:fs';

const here = new URL('.', import.meta.url);
const source = readFileSync(new URL('../config/types.ts', here), 'utf8');
writeFileSync(new URL('types-source.ts', here), renderTypesSource(source));

function renderTypesSource(text: string): string {
  return `// Generated from src/config/types.ts by \`make gen\`; do not edit.\nexport const TYPES_SOURCE = ${JSON.stringify(text)};\n`;
}
