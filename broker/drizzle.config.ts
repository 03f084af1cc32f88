/**
 * drizzle-kit configuration: `npm run db:generate` (from the repository root) turns the schema in
 * broker/src/store/schema.ts into SQL migrations in the top-level migrations/ folder. Paths are
 * relative to the repository root, where npm runs the script.
 */
import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'postgresql',
  schema: './broker/src/store/schema.ts',
  out: './migrations',
  strict: true,
  verbose: true,
});
