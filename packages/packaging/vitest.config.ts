import { vitestConfig } from '@dpskit/vitest-config';

export default vitestConfig();
