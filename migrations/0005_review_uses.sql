CREATE TABLE "review_uses" (
	"review_id" text PRIMARY KEY NOT NULL,
	"session_id" text NOT NULL,
	"used_at" timestamp with time zone NOT NULL
);
