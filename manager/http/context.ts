/** Types shared by the HTTP layer: the Hono environment and the services a Manager app is built from. */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Logger } from "../../shared/logger.ts";
import type { ManagerMetrics } from "../metrics.ts";
import type { CommandClient } from "../sync/commands.ts";
import type { ServiceDeps } from "../services/context.ts";
import type { EnrolmentDeps } from "../services/enrolment.ts";

import type { Principal } from "../auth/claims.ts";
import type { TokenSigner } from "../auth/signer.ts";
import type { TokenVerifier } from "../auth/verifier.ts";

export type { Principal, TokenSigner, TokenVerifier };

export interface AppServices extends ServiceDeps {
  /** The channel's command client (tokens, usage-now); without it clusters are unreachable (503). */
  commands?: CommandClient;
  /** Prometheus metrics; `/metrics` answers 404 without them. */
  metrics?: ManagerMetrics;
  verifier: TokenVerifier;
  signer: TokenSigner;
  /** Cluster enrolment (CA, settings, revocation hook); without it the enrolment routes answer 503. */
  enrolment?: EnrolmentDeps;
  options: {
    bodyLimitBytes: number;
    /** Development only: trust `X-KN-Roles` (DESIGN.md §4 says never by default). */
    insecureDevAuth: boolean;
    version: string;
  };
}

export type AppEnv = {
  Variables: {
    requestId: string;
    logger: Logger;
    principal: Principal;
  };
};

export type ManagerApp = OpenAPIHono<AppEnv>;
