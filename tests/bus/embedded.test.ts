/** The Bus contract over the embedded broker (in-process Aedes, no loopback client). */
import { createBroker } from "../../broker/broker.ts";
import { createEmbeddedBus } from "../../manager/bus/embedded.ts";
import { createMemoryLogger } from "../../shared/logger.ts";
import { connectOrFail, makePki } from "../broker/fixtures.ts";
import { describeBusContract } from "./contract.ts";

describeBusContract("embedded Aedes", async () => {
  const pki = await makePki();
  const logger = createMemoryLogger("warn");
  const broker = await createBroker({
    host: "127.0.0.1",
    port: 0,
    caPem: pki.ca.certificatePem,
    certPem: pki.server.certPem,
    keyPem: pki.server.keyPem,
    isClusterAllowed: async () => true,
    limits: { maxPayloadBytes: 64 * 1024, publishRatePerSecond: 10_000 },
    logger,
  });
  return {
    sharedSubscriptions: false,
    makeBus: async () => createEmbeddedBus({ broker, logger }),
    operator: async (id) =>
      connectOrFail({
        port: broker.port,
        caPem: pki.ca.certificatePem,
        identity: await pki.identity(id),
        clientId: id,
      }),
    close: () => broker.close(),
  };
});
