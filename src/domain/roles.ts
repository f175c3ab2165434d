/**
 * Built-in roles and the actions they grant. This table is the single source the route
 * checks use: a route names one action, a principal may perform it when one of its roles
 * lists it.
 */
export const ACTIONS = [
  'auth.read',
  'auth.write',
  'uploads.write',
  'catalog.write',
  'catalog.publish',
  'aliases.write',
  'publish-jobs.read',
  'publish-jobs.retry',
  'registry.write',
  'compose.build',
] as const;
export type Action = (typeof ACTIONS)[number];

export const ROLE_IDS = ['auth-manager', 'content-writer'] as const;
export type RoleId = (typeof ROLE_IDS)[number];

export interface Role {
  id: RoleId;
  displayName: string;
  description: string;
  actions: readonly Action[];
}

export const ROLES: readonly Role[] = [
  {
    id: 'auth-manager',
    displayName: 'Auth manager',
    description: 'Manages principals, role assignments, API tokens and OIDC provisioning rules.',
    actions: ['auth.read', 'auth.write'],
  },
  {
    id: 'content-writer',
    displayName: 'Content writer',
    description: 'Uploads bytes, drafts and publishes image versions, moves aliases, pushes to and deletes from the OCI registry, and builds images (composes).',
    actions: ['uploads.write', 'catalog.write', 'catalog.publish', 'aliases.write', 'publish-jobs.read', 'publish-jobs.retry', 'registry.write', 'compose.build'],
  },
];

export const isRoleId = (value: string): value is RoleId => (ROLE_IDS as readonly string[]).includes(value);

export function rolesGrant(roleIds: readonly string[], action: Action): boolean {
  return ROLES.some((r) => roleIds.includes(r.id) && r.actions.includes(action));
}
