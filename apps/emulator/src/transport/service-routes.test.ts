import { describe, expect, it } from 'vitest';
import { isServicePath, matchServiceRoute } from './service-routes.js';

describe('matchServiceRoute', () => {
  it('matches the routes the SDKs send, collection names in any case, ids decoded', () => {
    expect(matchServiceRoute('PUT', '/enrollmentGroups/my%20group')).toEqual({
      op: 'put',
      kind: 'group',
      id: 'my group',
      right: 'EnrollmentWrite',
    });
    expect(matchServiceRoute('POST', '/enrollmentgroups/g1/attestationmechanism')).toMatchObject({
      op: 'attestation',
      kind: 'group',
      id: 'g1',
    });
    expect(matchServiceRoute('POST', '/enrollments/query')).toMatchObject({ op: 'query', kind: 'individual' });
    expect(matchServiceRoute('GET', '/enrollments/query')).toMatchObject({ op: 'get', id: 'query' });
    expect(matchServiceRoute('POST', '/enrollments/')).toMatchObject({ op: 'bulk' });
    expect(matchServiceRoute('POST', '/enrollments')).toMatchObject({ op: 'bulk' });
    expect(matchServiceRoute('DELETE', '/registrations/dev-1')).toMatchObject({
      op: 'delete-registration',
      right: 'RegistrationStatusWrite',
    });
    expect(matchServiceRoute('POST', '/registrations/grp%201/query')).toMatchObject({
      op: 'query-registrations',
      groupId: 'grp 1',
    });
  });

  it('says which method a resource takes, and what it does not serve', () => {
    expect(matchServiceRoute('PATCH', '/enrollments/d1')).toEqual({
      op: 'method-not-allowed',
      allowed: 'GET, PUT, DELETE',
    });
    expect(matchServiceRoute('GET', '/enrollments/d1/attestationmechanism')).toMatchObject({
      op: 'method-not-allowed',
    });
    expect(matchServiceRoute('POST', '/enrollmentGroups')).toMatchObject({ op: 'method-not-allowed' });
    expect(matchServiceRoute('GET', '/enrollments/d1/other')).toEqual({ op: 'not-found' });
    expect(matchServiceRoute('GET', '/enrollments/%E0%A4%A')).toEqual({ op: 'not-found' });
    expect(matchServiceRoute('GET', '/registrations')).toEqual({ op: 'not-found' });
  });

  it('tells service paths from device paths ({idScope}/registrations/…)', () => {
    expect(isServicePath('/ENROLLMENTS/x')).toBe(true);
    expect(isServicePath('/registrations/x')).toBe(true);
    expect(isServicePath('/0ne00000A0A/registrations/x/register')).toBe(false);
    expect(isServicePath('/')).toBe(false);
  });
});
