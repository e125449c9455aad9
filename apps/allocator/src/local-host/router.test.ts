import { describe, expect, it } from 'vitest';
import type { EffectiveHttpTrigger } from '../registration/http-function.js';
import { FunctionRouter } from './router.js';

const trigger = (name: string, route: string, methods: EffectiveHttpTrigger['methods']): EffectiveHttpTrigger => ({
  name,
  route,
  methods,
  authLevel: 'function',
});

const router = new FunctionRouter('api', [
  { trigger: trigger('allocate', 'allocate', ['POST']), entry: 'allocate' },
  { trigger: trigger('device', 'devices/{id}/{part?}', ['GET', 'PUT']), entry: 'device' },
  { trigger: trigger('files', 'files/{*path}', ['GET']), entry: 'files' },
]);

describe('FunctionRouter', () => {
  it('finds a function on {routePrefix}/{route} with one of its methods', () => {
    expect(router.match('POST', '/api/allocate')).toMatchObject({ kind: 'found', entry: 'allocate', params: {} });
  });

  it('compares literals case-insensitively and ignores a trailing slash', () => {
    expect(router.match('post', '/API/Allocate/')).toMatchObject({ kind: 'found', entry: 'allocate' });
  });

  it('reports the allowed methods for a known route and a wrong method', () => {
    expect(router.match('GET', '/api/allocate')).toEqual({ kind: 'method-not-allowed', allow: ['POST'] });
  });

  it('does not find unknown paths, missing prefixes or extra segments', () => {
    expect(router.match('POST', '/api/allocat')).toEqual({ kind: 'not-found' });
    expect(router.match('POST', '/allocate')).toEqual({ kind: 'not-found' });
    expect(router.match('POST', '/api/allocate/extra')).toEqual({ kind: 'not-found' });
    expect(router.match('POST', '/')).toEqual({ kind: 'not-found' });
  });

  it('captures decoded parameters, optional parameters and catch-alls', () => {
    expect(router.match('GET', '/api/devices/my%20dev')).toMatchObject({ entry: 'device', params: { id: 'my dev' } });
    expect(router.match('PUT', '/api/devices/d1/twin')).toMatchObject({ params: { id: 'd1', part: 'twin' } });
    expect(router.match('GET', '/api/files/a/b/c.txt')).toMatchObject({
      entry: 'files',
      params: { path: 'a/b/c.txt' },
    });
  });

  it('treats an undecodable path as not found instead of throwing', () => {
    expect(router.match('POST', '/api/%E0%A4%A')).toEqual({ kind: 'not-found' });
  });

  it('answers a repeated path as the first time, with parameters of its own each time', () => {
    const first = router.match('PUT', '/api/devices/d1/twin');
    const again = router.match('PUT', '/api/devices/d1/twin');
    expect(again).toEqual(first);
    if (first.kind !== 'found' || again.kind !== 'found') throw new Error('expected a match');
    first.params.id = 'changed by a function';
    expect(router.match('PUT', '/api/devices/d1/twin')).toMatchObject({ params: { id: 'd1', part: 'twin' } });
    expect(again.params).toEqual({ id: 'd1', part: 'twin' });
    expect(router.match('GET', '/api/allocate')).toEqual({ kind: 'method-not-allowed', allow: ['POST'] });
    expect(router.match('GET', '/api/allocate')).toEqual({ kind: 'method-not-allowed', allow: ['POST'] });
  });

  it('keeps answering right after more distinct paths than it keeps', () => {
    const many = new FunctionRouter('api', [{ trigger: trigger('device', 'devices/{id}', ['GET']), entry: 'd' }]);
    for (let i = 0; i < 600; i++) {
      expect(many.match('GET', `/api/devices/d${i}`)).toEqual({
        kind: 'found',
        entry: 'd',
        trigger: trigger('device', 'devices/{id}', ['GET']),
        params: { id: `d${i}` },
      });
    }
    expect(many.match('GET', '/api/devices/d0')).toMatchObject({ params: { id: 'd0' } });
  });

  it('works with an empty route prefix', () => {
    const bare = new FunctionRouter('', [{ trigger: trigger('allocate', 'allocate', ['POST']), entry: 1 }]);
    expect(bare.match('POST', '/allocate')).toMatchObject({ kind: 'found', entry: 1 });
  });
});
