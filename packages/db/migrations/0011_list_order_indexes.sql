DROP INDEX "plans_tenant_created_idx";--> statement-breakpoint
DROP INDEX "pull_requests_tenant_updated_idx";--> statement-breakpoint
DROP INDEX "work_items_tenant_updated_idx";--> statement-breakpoint
CREATE INDEX "impediments_tenant_created_id_idx" ON "impediments" USING btree ("tenant_id","created_at","id");--> statement-breakpoint
CREATE INDEX "notification_deliveries_tenant_created_id_idx" ON "notification_deliveries" USING btree ("tenant_id","created_at","id");--> statement-breakpoint
CREATE INDEX "plans_tenant_created_id_idx" ON "plans" USING btree ("tenant_id","created_at","id");--> statement-breakpoint
CREATE INDEX "previews_tenant_live_idx" ON "previews" USING btree ("tenant_id","live_at","run_id");--> statement-breakpoint
CREATE INDEX "pull_requests_tenant_updated_id_idx" ON "pull_requests" USING btree ("tenant_id","updated_at","id");--> statement-breakpoint
CREATE INDEX "work_items_tenant_updated_id_idx" ON "work_items" USING btree ("tenant_id","updated_at","id");