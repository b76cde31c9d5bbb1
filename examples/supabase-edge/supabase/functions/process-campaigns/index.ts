// Supabase Edge Function `process-campaigns`: called by pg_cron (see supabase/migrations) every 30 s,
// it works the due Disparo campaigns for a bounded time and answers what it did. The work is in
// ../_shared/process-campaigns.ts; this file only hands Deno's request and secrets to it.
import { handleRequest } from '../_shared/process-campaigns.ts';

Deno.serve((req: Request) => handleRequest(req, (name) => Deno.env.get(name)));
