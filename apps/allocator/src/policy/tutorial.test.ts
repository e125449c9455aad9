import { describe, expect, it } from 'vitest';
import { HEATPUMP_BODY, requestFrom, TOASTER_BODY, TOASTERS_HUB } from '../testing/tutorial-requests.js';
import { accept, reject } from './policy.js';
import { TutorialMessage, tutorialPolicy } from './tutorial.js';

describe('tutorialPolicy', () => {
  it('assigns the tutorial toaster to the first linked hub', () => {
    expect(tutorialPolicy(requestFrom(TOASTER_BODY))).toEqual({ ok: true, response: { iotHubHostName: TOASTERS_HUB } });
  });

  it('takes linkedHubs[0] even when several hubs are linked', () => {
    const request = requestFrom(TOASTER_BODY, (r) => {
      r.linkedHubs = ['hub-b.azure-devices.net', 'hub-a.azure-devices.net'];
    });
    expect(tutorialPolicy(request)).toEqual(accept({ iotHubHostName: 'hub-b.azure-devices.net' }));
  });

  it('recognises contoso-toaster anywhere in the registration id', () => {
    const request = requestFrom(HEATPUMP_BODY, (r) => {
      r.deviceRuntimeContext.registrationId = 'breakroom499-contoso-toaster-007';
    });
    expect(tutorialPolicy(request)).toEqual(accept({ iotHubHostName: TOASTERS_HUB }));
  });

  it('compares case-sensitively, like C# string.Contains', () => {
    const request = requestFrom(TOASTER_BODY, (r) => {
      r.deviceRuntimeContext.registrationId = 'Contoso-Toaster-007';
    });
    expect(tutorialPolicy(request)).toEqual(reject(TutorialMessage.Unrecognized));
  });

  it('refuses the heat pump with 400 Unrecognized device registration.', () => {
    expect(tutorialPolicy(requestFrom(HEATPUMP_BODY))).toEqual({
      ok: false,
      status: 400,
      message: 'Unrecognized device registration.',
    });
  });

  it('refuses an empty registration id', () => {
    const request = requestFrom(TOASTER_BODY, (r) => {
      r.deviceRuntimeContext.registrationId = '';
    });
    expect(tutorialPolicy(request)).toEqual({
      ok: false,
      status: 400,
      message: 'Registration ID not provided for the device.',
    });
  });

  it('refuses an enrollment without linked hubs', () => {
    const request = requestFrom(TOASTER_BODY, (r) => {
      r.linkedHubs = [];
    });
    expect(tutorialPolicy(request)).toEqual({
      ok: false,
      status: 400,
      message: 'No hub group defined for the enrollment.',
    });
  });

  it('checks the registration id before the hubs, as the tutorial does', () => {
    const request = requestFrom(TOASTER_BODY, (r) => {
      r.deviceRuntimeContext.registrationId = '';
      r.linkedHubs = [];
    });
    expect(tutorialPolicy(request)).toEqual(reject(TutorialMessage.NoRegistrationId));
  });
});

describe('accept / reject', () => {
  it('build decisions with a 400 default status', () => {
    expect(accept({ iotHubHostName: 'h' })).toEqual({ ok: true, response: { iotHubHostName: 'h' } });
    expect(reject('no')).toEqual({ ok: false, status: 400, message: 'no' });
    expect(reject('later', 503)).toEqual({ ok: false, status: 503, message: 'later' });
  });
});
