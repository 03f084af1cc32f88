/** @hoop/shared/testing: helpers for tests only (never imported by production code). */
export {
  findPostgresBinDir,
  type PostgresInstance,
  type PostgresInstanceAuth,
  type PostgresInstanceOptions,
  startPostgresInstance,
} from './postgres-instance.js';
