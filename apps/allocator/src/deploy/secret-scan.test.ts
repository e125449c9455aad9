import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SECRET_SCAN_BYTES, secretIn, secretInFile } from './secret-scan.js';

const KEY = 'xHGZEpihJzjogt7rNRfrtwz6XLpBiq363VC2bcDVj8A=';

describe('secretIn', () => {
  it('finds the keys and tokens a dpskit user has in an app folder, with the line, never the value', () => {
    // the emulator's banner (stderr to a file), its config, an az --show-keys output, a SAS token, a PEM key
    const cases: Array<[string, string, number]> = [
      [
        `DPS emulator running\n  Service API  HostName=localhost;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=${KEY}\n`,
        'a shared access key (SharedAccessKey=…)',
        2,
      ],
      [
        `enrollmentGroups:\n  - attestation:\n      symmetricKey:\n        primaryKey: ${KEY}\n`,
        'an enrollment or device key (primaryKey/secondaryKey)',
        4,
      ],
      [
        `{"attestation":{"symmetricKey":{"primaryKey":"${KEY}"}}}`,
        'an enrollment or device key (primaryKey/secondaryKey)',
        1,
      ],
      [
        `SharedAccessSignature sr=hub.azure-devices.net&sig=abcdEFGH1234%2Bijkl5678%3D&se=1`,
        'a SAS token signature (sig=…)',
        1,
      ],
      [`\n\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkQ${'A'.repeat(40)}\n`, 'a private key (PEM)', 3],
    ];
    for (const [text, what, line] of cases) expect(secretIn(text)).toEqual({ what, line });
  });

  it('passes code that builds connection strings and text without key values', () => {
    for (const text of [
      `const cs = \`HostName=\${hub};DeviceId=\${id};SharedAccessKey=\${key}\`;`,
      'primaryKey: null',
      '"webhookUrl":"http://localhost:7071/api/allocate?code=****"',
      '{"msg":"Rejected","data":{"status":404,"reason":"No linked hub"}}',
      '-----BEGIN CERTIFICATE-----',
      // code and doc comments naming the header (as @azure/msal-node's Configuration.d.ts does)
      "if (pem.startsWith('-----BEGIN PRIVATE KEY-----')) return pem;",
      ' * privateKey: "-----BEGIN PRIVATE KEY-----\\n…\\n-----END PRIVATE KEY-----"',
    ]) {
      expect(secretIn(text)).toBeUndefined();
    }
  });

  it('reads at most SECRET_SCAN_BYTES of a file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dpskit-secret-scan-'));
    try {
      const early = path.join(dir, 'early.log');
      await writeFile(early, `SharedAccessKey=${KEY}\n${'x'.repeat(1024)}`);
      expect(await secretInFile(early)).toEqual({ what: 'a shared access key (SharedAccessKey=…)', line: 1 });
      const late = path.join(dir, 'late.log');
      await writeFile(
        late,
        Buffer.concat([Buffer.alloc(SECRET_SCAN_BYTES, 0x20), Buffer.from(`SharedAccessKey=${KEY}`)]),
      );
      expect(await secretInFile(late)).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
