ALTER TABLE "runs" ADD COLUMN "branch_key" text;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "queue_seq" bigserial NOT NULL;--> statement-breakpoint
CREATE INDEX "runs_lane_idx" ON "runs" USING btree ("tenant_id","branch_key","queue_seq");