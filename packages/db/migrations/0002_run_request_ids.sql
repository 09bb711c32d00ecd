ALTER TABLE "runs" ADD COLUMN "request_id" text;--> statement-breakpoint
CREATE UNIQUE INDEX "runs_request_id_uq" ON "runs" USING btree ("tenant_id","request_id");