// Test certificates for src/tls (and the TLS listeners to come): a private CA, an intermediate and the leaves the tests need,
// made with Debian's openssl CLI in a temporary folder that `cleanup` removes. Keys are never
// committed; nothing outside the tests imports this file.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The generated files, under `dir/certs/`. */
export interface TlsFixtures {
  /** The temporary folder; messages name files relative to it (`certs/a.pem`). */
  readonly dir: string;
  /** Absolute path of `certs/<file>`. */
  path(file: string): string;
  /** Removes the folder and every key in it. */
  cleanup(): void;
}

interface Issue {
  /** Subject CN. */
  readonly cn: string;
  /** SAN DNS names; none (and no `ip`) means a certificate with no SAN extension. */
  readonly dns?: readonly string[];
  /** SAN IP addresses. */
  readonly ip?: readonly string[];
  /** extendedKeyUsage clientAuth: a certificate a client shows (mutual TLS). */
  readonly clientAuth?: boolean;
  /** File stem of the issuing CA (`root`, `inter`). */
  readonly signer: string;
  readonly days?: number;
  /** A certificate authority (basicConstraints CA:TRUE). */
  readonly ca?: boolean;
  readonly rsa?: boolean;
}

/**
 * Generates, in a fresh temporary folder:
 * - `root` (self-signed CA) and `inter` (intermediate CA signed by root);
 * - `a` (SAN `a.test`, `*.a.test`, signed by inter; `a-chain.pem` is leaf + inter);
 * - `a2` (SAN `a.test` only, CN `ignored-cn.test`: a replacement for `a`), `w` (SAN `*.w.test`
 *   only), `b` (RSA, SAN `b.test`), `x` (SAN `x.a.test`), `cn` (no SAN, CN `cn.test`), `day`
 *   (valid one day, SAN `day.test`), `old` (valid 2020-01-01 to 2020-01-02 only, SAN
 *   `old.test`), each with its `.key`;
 * - for upstream TLS: `ip` (SAN `IP:127.0.0.1`, signed by root), `self` (self-signed leaf, SAN
 *   `self.test`), `client` (CN `switchyard test client`, extendedKeyUsage clientAuth, signed by
 *   root), each with its `.key`;
 * - for client certificates end to end: `e2e-client` (CN `client.test`, signed by root) and
 *   `e2e-rogue-client` (CN `client.test`, signed by `e2e-rogue`, a self-signed CA nobody trusts);
 * - `other.key` (matches nothing), `garbage.key`, `broken.key`, `enc.key` (encrypted),
 *   `broken.pem`, `misordered.pem` (a, then b, which did not issue it).
 */
export function createTlsFixtures(): TlsFixtures {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-tls-'));
  const certs = join(dir, 'certs');
  mkdirSync(certs);
  const path = (file: string): string => join(certs, file);
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: certs, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const newKey = (stem: string, rsa = false): void =>
    rsa
      ? openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', `${stem}.key`)
      : openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${stem}.key`);
  const extensions = (stem: string, spec: Issue): string => {
    const lines = spec.ca ? ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'] : ['basicConstraints=CA:FALSE'];
    const san = [...(spec.dns ?? []).map((name) => `DNS:${name}`), ...(spec.ip ?? []).map((address) => `IP:${address}`)];
    if (san.length > 0) lines.push(`subjectAltName=${san.join(',')}`);
    if (spec.clientAuth) lines.push('extendedKeyUsage=clientAuth');
    writeFileSync(path(`${stem}.ext`), `${lines.join('\n')}\n`);
    return `${stem}.ext`;
  };
  const request = (stem: string, spec: Issue): void => {
    newKey(stem, spec.rsa);
    openssl('req', '-new', '-key', `${stem}.key`, '-subj', `/CN=${spec.cn}`, '-out', `${stem}.csr`);
  };
  const issue = (stem: string, spec: Issue): void => {
    request(stem, spec);
    const ext = extensions(stem, spec);
    const signer = spec.signer;
    openssl(
      'x509',
      '-req',
      '-in',
      `${stem}.csr`,
      '-CA',
      `${signer}.pem`,
      '-CAkey',
      `${signer}.key`,
      '-CAcreateserial',
      '-days',
      String(spec.days ?? 30),
      '-extfile',
      ext,
      '-out',
      `${stem}.pem`,
    );
  };

  newKey('root');
  openssl('req', '-x509', '-new', '-key', 'root.key', '-subj', '/CN=switchyard test root', '-days', '30', '-out', 'root.pem');
  issue('inter', { cn: 'switchyard test intermediate', signer: 'root', ca: true });
  issue('a', { cn: 'a.test', dns: ['a.test', '*.a.test'], signer: 'inter' });
  issue('a2', { cn: 'ignored-cn.test', dns: ['a.test'], signer: 'inter' });
  issue('w', { cn: 'w.test', dns: ['*.w.test'], signer: 'root' });
  issue('b', { cn: 'b.test', dns: ['b.test'], signer: 'root', rsa: true });
  issue('x', { cn: 'x.a.test', dns: ['x.a.test'], signer: 'root' });
  issue('cn', { cn: 'cn.test', signer: 'root' });
  issue('day', { cn: 'day.test', dns: ['day.test'], signer: 'root', days: 1 });
  // openssl 3.0's x509 has no -not_before; `openssl ca` takes explicit start and end dates.
  request('old', { cn: 'old.test', signer: 'root' });
  writeFileSync(path('index.txt'), '');
  writeFileSync(path('serial'), '1000\n');
  writeFileSync(
    path('ca.cnf'),
    [
      '[ca]',
      'default_ca = test_ca',
      '[test_ca]',
      'database = index.txt',
      'new_certs_dir = .',
      'serial = serial',
      'default_md = sha256',
      'policy = any',
      'unique_subject = no',
      '[any]',
      'commonName = supplied',
      '',
    ].join('\n'),
  );
  const oldExt = extensions('old', { cn: 'old.test', dns: ['old.test'], signer: 'root' });
  openssl(
    'ca',
    '-batch',
    '-notext',
    '-config',
    'ca.cnf',
    '-cert',
    'root.pem',
    '-keyfile',
    'root.key',
    '-in',
    'old.csr',
    '-out',
    'old.pem',
    '-extfile',
    oldExt,
    '-startdate',
    '20200101000000Z',
    '-enddate',
    '20200102000000Z',
  );

  issue('ip', { cn: '127.0.0.1', ip: ['127.0.0.1'], signer: 'root' });
  issue('client', { cn: 'switchyard test client', signer: 'root', clientAuth: true });
  // For the e2e client-certificate cases: one client from root, one from a CA nobody trusts.
  issue('e2e-client', { cn: 'client.test', signer: 'root', clientAuth: true });
  newKey('e2e-rogue');
  openssl('req', '-x509', '-new', '-key', 'e2e-rogue.key', '-subj', '/CN=e2e rogue root', '-days', '30', '-out', 'e2e-rogue.pem');
  issue('e2e-rogue-client', { cn: 'client.test', signer: 'e2e-rogue', clientAuth: true });
  newKey('self');
  const selfExt = ['-addext', 'subjectAltName=DNS:self.test', '-addext', 'basicConstraints=CA:FALSE'];
  openssl('req', '-x509', '-new', '-key', 'self.key', '-subj', '/CN=self.test', ...selfExt, '-days', '30', '-out', 'self.pem');

  writeFileSync(path('a-chain.pem'), readFileSync(path('a.pem'), 'utf8') + readFileSync(path('inter.pem'), 'utf8'));
  writeFileSync(path('misordered.pem'), readFileSync(path('a.pem'), 'utf8') + readFileSync(path('b.pem'), 'utf8'));
  newKey('other');
  openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-aes-256-cbc', '-pass', 'pass:secret', '-out', 'enc.key');
  writeFileSync(path('garbage.key'), 'this is not a key\n');
  writeFileSync(path('broken.key'), '-----BEGIN PRIVATE KEY-----\nAAAAnotakey////\n-----END PRIVATE KEY-----\n');
  writeFileSync(path('broken.pem'), '-----BEGIN CERTIFICATE-----\nMIIBnotacert////\n-----END CERTIFICATE-----\n');

  return { dir, path, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
