CREATE TABLE "reviews" (
	"id" text PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"connection_name" text NOT NULL,
	"requester_id" text NOT NULL,
	"requester_name" text NOT NULL,
	"justification" text,
	"duration_seconds" integer,
	"statement" text,
	"session_id" text,
	"status" text NOT NULL,
	"approvals" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"decided_by" text,
	"decision_reason" text,
	"created_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"decided_at" timestamp with time zone,
	"grant_id" text,
	CONSTRAINT "reviews_status_check" CHECK ("reviews"."status" in ('pending', 'approved', 'rejected', 'expired', 'revoked')),
	CONSTRAINT "reviews_kind_check" CHECK ("reviews"."kind" in ('access', 'statement'))
);
--> statement-breakpoint
CREATE INDEX "reviews_status_idx" ON "reviews" USING btree ("status","created_at");--> statement-breakpoint
CREATE INDEX "reviews_requester_idx" ON "reviews" USING btree ("requester_id");