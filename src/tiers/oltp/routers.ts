// OLTP area routers, mounted at the top level of the app router (tenants, users, ...).
import { z } from "zod";
import { adminProcedure, authedProcedure, router } from "../../trpc/trpc";
import { getCurrentTenant, renameTenant } from "./services/tenants";

export const tenantsRouter = router({
  current: authedProcedure.query(({ ctx }) => getCurrentTenant(ctx.store("oltp"), ctx.scope)),
  rename: adminProcedure
    .input(z.object({ name: z.string().trim().min(1).max(200) }))
    .mutation(({ ctx, input }) => renameTenant(ctx.store("oltp"), ctx.scope, input.name)),
});

// Filled by the OLTP issue; mounted now so clients see the final shape of the router.
export const usersRouter = router({});
export const apiKeysRouter = router({});
export const domainsRouter = router({});
export const mailboxesRouter = router({});
export const campaignsRouter = router({});
export const leadsRouter = router({});
export const emailsRouter = router({});
