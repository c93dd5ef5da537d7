-- The operator disables a tenant (`stratagem tenant disable`: its keys are
-- refused with 403 until it is enabled again) or deletes it (`stratagem
-- tenant delete`: its keys are revoked and refused with 401, its running
-- campaigns and analyses stopped; its rows stay, nothing is erased).
-- Authentication reads both on every request.
ALTER TABLE tenants ADD COLUMN disabled_at BIGINT;
ALTER TABLE tenants ADD COLUMN deleted_at BIGINT;
