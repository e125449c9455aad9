import { describe, expect, it } from 'vitest';
import { matchRoute } from './https-routes.js';

describe('matchRoute', () => {
  it('matches the three device routes, decoding path segments', () => {
    expect(matchRoute('PUT', '/0ne00000A0A/registrations/dev%3A1/register')).toEqual({
      kind: 'register',
      idScope: '0ne00000A0A',
      registrationId: 'dev:1',
    });
    expect(matchRoute('GET', '/0ne00000A0A/registrations/dev-1/operations/4.ab.cd')).toEqual({
      kind: 'operation-status',
      idScope: '0ne00000A0A',
      registrationId: 'dev-1',
      operationId: '4.ab.cd',
    });
    expect(matchRoute('POST', '/0ne00000A0A/registrations/dev-1')).toEqual({
      kind: 'status-lookup',
      idScope: '0ne00000A0A',
      registrationId: 'dev-1',
    });
  });

  it('tells a wrong method from an unknown path', () => {
    expect(matchRoute('GET', '/s/registrations/d/register')).toEqual({ kind: 'method-not-allowed', allowed: 'PUT' });
    expect(matchRoute('DELETE', '/s/registrations/d')).toEqual({ kind: 'method-not-allowed', allowed: 'POST' });
    for (const path of [
      '/',
      '/s',
      '/s/enrollments/d',
      '/s/registrations/d/other',
      '/s/registrations/d/operations/',
      '/s/registrations/%E0%A4%A/register',
    ]) {
      expect(matchRoute('PUT', path)).toEqual({ kind: 'not-found' });
    }
  });
});
