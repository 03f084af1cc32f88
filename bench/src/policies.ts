/** The two hoop policies the bench compares (set with `hoop admin connections policy set`). */

/** No content policy and no recording: the agent keeps its raw relay. */
export const NO_POLICY = `recording:
  enabled: false
`;

/** Issue 7's example: guardrails, column masking, value detectors; recording on by default. */
export const ALL_POLICIES = `guardrails:
  deny:
    - statements: [drop, truncate, alter, grant, revoke]
    - rule: delete-without-where
    - rule: update-without-where
    - functions: [pg_read_file, pg_ls_dir, lo_import, lo_export, dblink]
    - rule: copy-program
masking:
  columns:
    - column: public.pgbench_accounts.filler
      strategy: redact
  detectors: [email, credit_card, iban, phone, us_ssn, jwt]
`;
