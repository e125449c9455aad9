import type { AllocationPolicy, EnrollmentGroup, IndividualEnrollment } from '@dpskit/contracts';

/** A hub linked to the emulated DPS instance (the management plane's linked-hub settings). */
export interface LinkedHub {
  hostName: string;
  /** 1 to 1000; raises the hub's share under `hashed` (DPS default 1). */
  allocationWeight: number;
  /** false: never chosen by allocation unless an enrollment names it in `iotHubs`. */
  applyAllocationPolicy: boolean;
  /** dpskit: the emulated latency that `geoLatency` compares (DPS measures it; the emulator cannot). */
  latencyMs?: number;
  /** The consumer groups of its built-in endpoint besides `$Default` (config `consumerGroups`). */
  consumerGroups?: readonly string[];
}

export interface SymmetricKeys {
  primaryKey: string;
  secondaryKey: string;
}

/** One certificate an X.509 enrollment trusts. */
export interface X509TrustedCertificate {
  /** Where the enrollment names it. */
  source: 'clientCertificates' | 'signingCertificates' | 'caReferences';
  slot: 'primary' | 'secondary';
  /** PEM or base64 DER. Absent when a CA reference names no certificate of the instance. */
  certificate?: string;
  /** `caReferences`: the certificate's name in the instance. */
  reference?: string;
}

/** What an X.509 enrollment verifies a device's certificate chain against. */
export interface X509Trust {
  certificates: readonly X509TrustedCertificate[];
}

/** How an enrollment's devices prove who they are: symmetric keys (SAS tokens) or X.509 certificates. */
export type EnrollmentCredentials = { keys: SymmetricKeys; x509?: never } | { x509: X509Trust; keys?: never };

/** An enrollment as the emulated service stores it: defaults filled in, keys or trusted certificates known. */
export type EmulatedEnrollment =
  | ({ kind: 'group'; id: string; record: EnrollmentGroup } & EnrollmentCredentials)
  | ({ kind: 'individual'; id: string; record: IndividualEnrollment } & EnrollmentCredentials);

/** An enrollment whose devices the emulator cannot attest (tpm): kept so a refusal can say why. */
export interface UnverifiableEnrollment {
  kind: 'group' | 'individual';
  id: string;
  attestationType: string;
}

export interface EnrollmentSet {
  groups: readonly Extract<EmulatedEnrollment, { kind: 'group' }>[];
  /** Keyed by the lower-cased registration id: DPS treats registration ids case-insensitively. */
  individuals: ReadonlyMap<string, Extract<EmulatedEnrollment, { kind: 'individual' }>>;
  /** tpm enrollments (individuals keyed by lower-cased registration id). */
  unverifiable?: {
    groups: readonly UnverifiableEnrollment[];
    individuals: ReadonlyMap<string, UnverifiableEnrollment>;
  };
}

/** Everything the emulated DPS instance is configured with. */
export interface ServiceModel {
  idScope: string;
  linkedHubs: readonly LinkedHub[];
  /** The instance's default policy, used by enrollments that name none (DPS: `hashed`; never `custom`). */
  defaultAllocationPolicy: Exclude<AllocationPolicy, 'custom'>;
  enrollments: EnrollmentSet;
}

export function enrollmentSet(
  enrollments: readonly EmulatedEnrollment[],
  unverifiable: readonly UnverifiableEnrollment[] = [],
): EnrollmentSet {
  const groups: Extract<EmulatedEnrollment, { kind: 'group' }>[] = [];
  const individuals = new Map<string, Extract<EmulatedEnrollment, { kind: 'individual' }>>();
  for (const enrollment of enrollments) {
    if (enrollment.kind === 'group') groups.push(enrollment);
    else individuals.set(enrollment.id.toLowerCase(), enrollment);
  }
  if (unverifiable.length === 0) return { groups, individuals };
  return {
    groups,
    individuals,
    unverifiable: {
      groups: unverifiable.filter((e) => e.kind === 'group'),
      individuals: new Map(unverifiable.filter((e) => e.kind === 'individual').map((e) => [e.id.toLowerCase(), e])),
    },
  };
}

export function allocationPolicyOf(enrollment: EmulatedEnrollment, model: ServiceModel): AllocationPolicy {
  return enrollment.record.allocationPolicy ?? model.defaultAllocationPolicy;
}

/** The enrollment reference used in logs, events and registration records. */
export interface EnrollmentRef {
  kind: 'group' | 'individual';
  id: string;
}

export function enrollmentRef(enrollment: EmulatedEnrollment): EnrollmentRef {
  return { kind: enrollment.kind, id: enrollment.id };
}
