import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestCa, createTestDeviceCertificate } from '../testing/certificates.js';
import { tempStateDir } from '../testing/fixtures.js';
import { TUTORIAL_GROUP_ID, TUTORIAL_GROUP_KEY, tutorialConfig } from './defaults.js';
import { ConfigError, loadConfigFile, parseConfig, parseConfigText } from './load.js';

const dir = tempStateDir();
afterAll(() => dir.remove());

const issuesOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
};

describe('config loading', () => {
  it('applies defaults and accepts the built-in tutorial setup', () => {
    const config = parseConfig(tutorialConfig());
    expect(config.idScope).toBe('0ne00000A0A');
    expect(config.defaultAllocationPolicy).toBe('hashed');
    expect(config.iotHubs.map((h) => [h.allocationWeight, h.applyAllocationPolicy])).toEqual([
      [1, true],
      [1, true],
    ]);
    expect(config.enrollmentGroups[0]).toMatchObject({
      enrollmentGroupId: TUTORIAL_GROUP_ID,
      allocationPolicy: 'hashed',
      attestation: { symmetricKey: { primaryKey: TUTORIAL_GROUP_KEY } },
    });
    const custom = parseConfig(tutorialConfig({ webhookUrl: 'http://localhost:7071/api/allocate' }));
    expect(custom.enrollmentGroups[0]).toMatchObject({
      allocationPolicy: 'custom',
      customAllocationDefinition: { webhookUrl: 'http://localhost:7071/api/allocate', apiVersion: '2021-10-01' },
      // the tutorial's enrollment group selects the toasters hub only
      iotHubs: ['contoso-toasters-hub-1098.azure-devices.net'],
    });
    expect(config.enrollmentGroups[0]?.iotHubs).toEqual([
      'contoso-toasters-hub-1098.azure-devices.net',
      'contoso-heatpumps-hub-1098.azure-devices.net',
    ]);
  });

  it('reads YAML and JSON files', () => {
    const yamlFile = join(dir.path, 'dps.yaml');
    writeFileSync(yamlFile, 'iotHubs:\n  - hostName: hub-1.azure-devices.net\n    allocationWeight: 10\n');
    expect(loadConfigFile(yamlFile).iotHubs[0]).toEqual({
      hostName: 'hub-1.azure-devices.net',
      allocationWeight: 10,
      applyAllocationPolicy: true,
    });
    const jsonFile = join(dir.path, 'dps.json');
    writeFileSync(jsonFile, JSON.stringify({ idScope: '0ne12345678', iotHubs: [{ hostName: 'h.net' }] }));
    expect(loadConfigFile(jsonFile).idScope).toBe('0ne12345678');
  });

  it('names the file and every invalid field by path', () => {
    const file = join(dir.path, 'broken.yaml');
    writeFileSync(
      file,
      [
        'idScope: "0ne/bad"',
        'defaultAllocationPolicy: custom',
        'iotHubs:',
        '  - hostName: hub-1.azure-devices.net',
        '    allocationWeight: 0',
        '  - hostName: HUB-1.azure-devices.net',
        'enrollmentGroups:',
        '  - enrollmentGroupId: g1',
        '    allocationPolicy: custom',
        '    iotHubs: [not-linked.azure-devices.net]',
        '    attestation: { type: x509 }',
        '  - enrollmentGroupId: g2',
        '    allocationPolicy: custom',
        '    customAllocationDefinition: { webhookUrl: "ftp://x/y", apiVersion: "2021-10-01" }',
        '    attestation: { type: symmetricKey, symmetricKey: { primaryKey: "not base64!" } }',
        'individualEnrollments:',
        '  - registrationId: "bad id"',
        'unknownField: 1',
      ].join('\n'),
    );
    const error = issuesOf(() => loadConfigFile(file));
    expect(error.source).toBe(file);
    expect(error.message.split('\n')[0]).toBe(`Invalid emulator config (${file}):`);
    const byPath = Object.fromEntries(error.issues.map((i) => [i.path, i.message]));
    expect(Object.keys(byPath).sort()).toEqual(
      ['', 'idScope', 'defaultAllocationPolicy', 'iotHubs[0].allocationWeight'].sort(),
    );
    expect(byPath.defaultAllocationPolicy).toContain('DPS does not allow custom here');
    expect(byPath['']).toContain('unknownField');
  });

  it('checks relations between fields once the shapes are valid', () => {
    const error = issuesOf(() =>
      parseConfig(
        {
          iotHubs: [{ hostName: 'hub-1.net' }, { hostName: 'HUB-1.net' }],
          enrollmentGroups: [
            {
              enrollmentGroupId: 'g1',
              allocationPolicy: 'custom',
              iotHubs: ['not-linked.net'],
              attestation: { type: 'x509' },
            },
            {
              enrollmentGroupId: 'G1',
              allocationPolicy: 'custom',
              customAllocationDefinition: { webhookUrl: 'ftp://x/y', apiVersion: '2021-10-01' },
              attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: 'not base64!', secondaryKey: 'AAAA' } },
            },
          ],
          individualEnrollments: [{ registrationId: 'bad id', iotHubHostName: 'elsewhere.net' }],
        },
        'inline',
      ),
    );
    expect(error.message.startsWith('Invalid emulator config (inline):')).toBe(true);
    expect(error.issues).toEqual(
      expect.arrayContaining([
        { path: 'iotHubs[1].hostName', message: '"HUB-1.net" is linked twice' },
        {
          path: 'enrollmentGroups[0].attestation',
          message: 'Invalid attestation.x509: the x509 attestation is missing.',
        },
        {
          path: 'enrollmentGroups[0].customAllocationDefinition',
          message: 'is required when allocationPolicy is "custom"',
        },
        { path: 'enrollmentGroups[0].iotHubs[0]', message: '"not-linked.net" is not one of the linked iotHubs' },
        { path: 'enrollmentGroups[1].enrollmentGroupId', message: '"G1" is used twice' },
        { path: 'enrollmentGroups[1].attestation.symmetricKey.primaryKey', message: 'primaryKey is not valid base64' },
        { path: 'enrollmentGroups[1].attestation.symmetricKey.secondaryKey', message: 'must be 16 to 64 bytes, not 3' },
        {
          path: 'enrollmentGroups[1].customAllocationDefinition.webhookUrl',
          message: 'must be an http or https URL, not ftp:',
        },
        {
          path: 'individualEnrollments[0].registrationId',
          message: expect.stringContaining('may only contain letters, digits'),
        },
        {
          path: 'individualEnrollments[0].iotHubHostName',
          message: '"elsewhere.net" is not one of the linked iotHubs',
        },
      ]),
    );
  });

  it("refuses two linked hubs of one name (first label): it names each hub's Event Hubs-compatible endpoint", () => {
    const error = issuesOf(() =>
      parseConfig(
        {
          iotHubs: [
            { hostName: 'hub-1.azure-devices.net' },
            { hostName: 'Hub-1.example.net' },
            { hostName: 'hub-2.net' },
          ],
        },
        'inline',
      ),
    );
    expect(error.issues).toEqual([
      {
        path: 'iotHubs[1].hostName',
        message:
          '"Hub-1.example.net" has the name "hub-1" of "hub-1.azure-devices.net" (its first label): each linked hub needs its own, which names its Event Hubs-compatible endpoint',
      },
    ]);
  });

  it('reports unreadable, empty and unparsable files clearly', () => {
    expect(issuesOf(() => loadConfigFile(join(dir.path, 'missing.yaml'))).message).toContain('the file does not exist');
    expect(issuesOf(() => parseConfigText('', 'empty.yaml')).message).toContain('the file is empty');
    expect(issuesOf(() => parseConfigText('iotHubs: [', 'bad.yaml')).message).toMatch(
      /not valid YAML: line \d+, column \d+/,
    );
    expect(issuesOf(() => parseConfigText('{"iotHubs": ', 'bad.json')).message).toContain('not valid JSON');
    expect(issuesOf(() => parseConfig({})).issues).toEqual([
      { path: 'iotHubs', message: expect.stringContaining('expected array') },
    ]);
  });

  it('names an initialTwin its hub would refuse, by path (devices would fail with 500001 at every registration)', () => {
    const hubs = [{ hostName: 'hub-1.net' }];
    const group = (initialTwin: unknown) => ({
      enrollmentGroupId: 'g1',
      allocationPolicy: 'hashed',
      iotHubs: ['hub-1.net'],
      initialTwin,
    });
    const error = issuesOf(() =>
      parseConfig({
        iotHubs: hubs,
        enrollmentGroups: [
          group({ tags: { 'site.name': 'x' } }),
          {
            // Nine strings of 4,000 bytes (IoT Hub takes strings up to 4 KB): 36,064 bytes in all.
            ...group({
              properties: { desired: Object.fromEntries([...'abcdefghi'].map((k) => [k, 'x'.repeat(4000)])) },
            }),
            enrollmentGroupId: 'g2',
          },
        ],
        individualEnrollments: [{ registrationId: 'd1', initialTwin: { tags: { $version: 2 } } }],
      }),
    );
    expect(error.issues).toEqual([
      {
        path: 'enrollmentGroups[0].initialTwin.tags',
        message: `property name "site.name" in tags contains '.', '$', a space or a control character`,
      },
      {
        path: 'enrollmentGroups[1].initialTwin.properties.desired',
        message: "desired is 36009 bytes by IoT Hub's twin size measure, over its 32768-byte limit",
      },
      {
        path: 'individualEnrollments[0].initialTwin.tags',
        message: `property name "$version" in tags contains '.', '$', a space or a control character`,
      },
    ]);
    // Within the rules (nulls, 10 levels) the file is taken.
    const deep = JSON.parse(`${'{"a":'.repeat(9)}{"leaf":null}${'}'.repeat(9)}`) as unknown;
    expect(parseConfig({ iotHubs: hubs, enrollmentGroups: [group({ tags: deep })] }).enrollmentGroups).toHaveLength(1);
  });

  it('takes attemptHistory from 0 to 1,000,000 and names a bad one', () => {
    const hubs = [{ hostName: 'hub-1.net' }];
    expect(parseConfig({ iotHubs: hubs }).attemptHistory).toBeUndefined();
    expect(parseConfig({ iotHubs: hubs, attemptHistory: 0 }).attemptHistory).toBe(0);
    expect(parseConfig({ iotHubs: hubs, attemptHistory: 50_000 }).attemptHistory).toBe(50_000);
    for (const bad of [-1, 2.5, 1_000_001]) {
      expect(issuesOf(() => parseConfig({ iotHubs: hubs, attemptHistory: bad })).issues).toEqual([
        { path: 'attemptHistory', message: 'must be a whole number of attempts from 0 to 1000000 (0 keeps none)' },
      ]);
    }
    expect(issuesOf(() => parseConfig({ iotHubs: hubs, attemptHistory: '100' })).issues).toEqual([
      { path: 'attemptHistory', message: expect.stringContaining('expected number') },
    ]);
  });

  it("takes a hub's consumer groups as ARM names them and names a bad, repeated or extra one", () => {
    const hub = (consumerGroups: unknown) => ({ iotHubs: [{ hostName: 'hub-1.net', consumerGroups }] });
    expect(parseConfig(hub(['analytics', 'Stream.Job_2', 'x'.repeat(50)])).iotHubs[0]?.consumerGroups).toEqual([
      'analytics',
      'Stream.Job_2',
      'x'.repeat(50),
    ]);
    expect(parseConfig({ iotHubs: [{ hostName: 'hub-1.net' }] }).iotHubs[0]?.consumerGroups).toBeUndefined();
    const naming = 'must be 1 to 50 letters, digits, hyphens, periods or underscores';
    expect(issuesOf(() => parseConfig(hub(['ok', '', 'has space', 'y'.repeat(51), '$default']))).issues).toEqual([
      { path: 'iotHubs[0].consumerGroups[1]', message: naming },
      { path: 'iotHubs[0].consumerGroups[2]', message: naming },
      { path: 'iotHubs[0].consumerGroups[3]', message: naming },
      { path: 'iotHubs[0].consumerGroups[4]', message: "$Default is every hub's own: leave it out" },
    ]);
    expect(issuesOf(() => parseConfig(hub(['ok', 'OK']))).issues).toEqual([
      { path: 'iotHubs[0].consumerGroups[1]', message: '"OK" is listed twice' },
    ]);
    expect(issuesOf(() => parseConfig(hub(Array.from({ length: 20 }, (_, i) => `g${i}`)))).issues).toEqual([
      { path: 'iotHubs[0].consumerGroups', message: 'at most 19 besides $Default (Event Hubs: 20 a hub)' },
    ]);
  });

  it('takes an issuing CA for certificate issuance and names a bad validity', () => {
    const hubs = [{ hostName: 'hub-1.net' }];
    const issuingCa = { certificate: '-----BEGIN CERTIFICATE-----…', key: '-----BEGIN PRIVATE KEY-----…', days: 90 };
    expect(parseConfig({ iotHubs: hubs, issuingCa }).issuingCa).toEqual(issuingCa);
    expect(issuesOf(() => parseConfig({ iotHubs: hubs, issuingCa: { ...issuingCa, days: 0 } })).issues).toEqual([
      { path: 'issuingCa.days', message: 'must be a whole number of days from 1 to 3650' },
    ]);
    const { key: _key, ...noKey } = issuingCa;
    expect(issuesOf(() => parseConfig({ iotHubs: hubs, issuingCa: noKey })).issues).toEqual([
      { path: 'issuingCa.key', message: expect.stringContaining('expected string') },
    ]);
  });

  it('takes X.509 enrollments and CA certificates, and names what is wrong with them', async () => {
    const root = await createTestCa('Config root');
    const config = parseConfig({
      iotHubs: [{ hostName: 'hub-1.net' }],
      certificates: [{ name: 'root', certificate: root.cert }],
      enrollmentGroups: [
        { enrollmentGroupId: 'g', attestation: { type: 'x509', x509: { caReferences: { primary: 'ROOT' } } } },
      ],
    });
    expect(config.certificates).toHaveLength(1);
    const error = issuesOf(() =>
      parseConfig({
        iotHubs: [{ hostName: 'hub-1.net' }],
        certificates: [
          { name: 'root', certificate: 'not a certificate' },
          { name: 'Root', certificate: root.cert },
        ],
        enrollmentGroups: [
          { enrollmentGroupId: 'g1', attestation: { type: 'x509', x509: { caReferences: { primary: 'missing' } } } },
          {
            enrollmentGroupId: 'g2',
            attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: root.cert } } } },
          },
        ],
        individualEnrollments: [
          {
            registrationId: 'd1',
            attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: 'MIIB' } } } },
          },
          { registrationId: 'd2', attestation: { type: 'tpm', tpm: { endorsementKey: 'ZWs=' } } },
        ],
      }),
    );
    expect(error.issues).toEqual(
      expect.arrayContaining([
        {
          path: 'certificates[0].certificate',
          message: expect.stringContaining('is not a PEM or base64 DER X.509 certificate'),
        },
        { path: 'certificates[1].name', message: '"Root" is used twice' },
        {
          path: 'enrollmentGroups[0].attestation.x509.caReferences.primary',
          message: '"missing" is not one of the certificates (give it in the top-level certificates list)',
        },
        {
          path: 'enrollmentGroups[1].attestation',
          message: expect.stringContaining('enrollment groups take signingCertificates or caReferences'),
        },
        {
          path: 'individualEnrollments[0].attestation',
          message: expect.stringContaining('Invalid attestation.x509.clientCertificates.primary.certificate'),
        },
        {
          path: 'individualEnrollments[1].attestation.type',
          message: '"tpm" attestation is not emulated; use "symmetricKey" or "x509"',
        },
      ]),
    );
  });

  it('refuses a certificate that two groups, or two individual enrollments, use, naming both', async () => {
    const root = await createTestCa('Config duplicate root');
    const line = await createTestCa('Config duplicate line', { issuer: root });
    const device = await createTestDeviceCertificate('dup-device', { issuer: line });
    const error = issuesOf(() =>
      parseConfig({
        iotHubs: [{ hostName: 'hub-1.net' }],
        certificates: [{ name: 'root', certificate: root.cert }],
        enrollmentGroups: [
          { enrollmentGroupId: 'by-ref', attestation: { type: 'x509', x509: { caReferences: { primary: 'root' } } } },
          {
            enrollmentGroupId: 'line',
            attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: line.cert } } } },
          },
          {
            enrollmentGroupId: 'root-again',
            attestation: {
              type: 'x509',
              x509: {
                signingCertificates: { primary: { certificate: device.cert }, secondary: { certificate: root.cert } },
              },
            },
          },
        ],
        individualEnrollments: [
          {
            registrationId: 'dup-device',
            attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: device.cert } } } },
          },
          {
            registrationId: 'dup-device-2',
            attestation: {
              type: 'x509',
              x509: {
                clientCertificates: { secondary: { certificate: device.cert }, primary: { certificate: line.cert } },
              },
            },
          },
        ],
      }),
    );
    expect(error.issues).toEqual([
      {
        path: 'enrollmentGroups[2].attestation.x509.signingCertificates.secondary',
        message: expect.stringMatching(
          /^the certificate \(SHA-256 [0-9A-F]{64}\) is already the caReferences\.primary of enrollmentGroups\[0\] \("by-ref"\); a certificate may identify the devices of one enrollment group only$/,
        ),
      },
      {
        path: 'individualEnrollments[1].attestation.x509.clientCertificates.secondary',
        message: expect.stringContaining(
          'is already the clientCertificates.primary of individualEnrollments[0] ("dup-device")',
        ),
      },
    ]);
  });
});
