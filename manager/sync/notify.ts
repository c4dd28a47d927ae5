/**
 * Tells the dispatcher which clusters' change logs grew, after the transaction that grew them committed — so a
 * desired change is published only once it is durable, and never from a rolled-back transaction.
 * A Proxy keeps the Store's own methods and prototype intact.
 */
import type { ChangeInput, ChangeLogRepo, Store, StoreTx } from "../store/store.ts";

function recordingChangeLog(changeLog: ChangeLogRepo, touched: Set<string>): ChangeLogRepo {
  return new Proxy(changeLog, {
    get(target, property, receiver) {
      if (property === "append") {
        return async (clusterId: string, changes: ChangeInput[]) => {
          const rows = await target.append(clusterId, changes);
          if (rows.length > 0) touched.add(clusterId);
          return rows;
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function withChangeLog<T extends StoreTx>(tx: T, changeLog: ChangeLogRepo): T {
  return new Proxy(tx, {
    get(target, property, receiver) {
      if (property === "changeLog") return changeLog;
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

export function observeChangeLog(store: Store, onCommitted: (clusterIds: string[]) => void): Store {
  const fire = (touched: Set<string>) => {
    if (touched.size > 0) onCommitted([...touched]);
  };
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === "transaction") {
        return async <T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> => {
          const touched = new Set<string>();
          const result = await target.transaction((tx) =>
            fn(withChangeLog(tx, recordingChangeLog(tx.changeLog, touched))),
          );
          fire(touched);
          return result;
        };
      }
      if (property === "changeLog") {
        // Outside a transaction every append commits on its own.
        const base = target.changeLog;
        return new Proxy(base, {
          get(inner, innerProperty, innerReceiver) {
            if (innerProperty === "append") {
              return async (clusterId: string, changes: ChangeInput[]) => {
                const rows = await inner.append(clusterId, changes);
                if (rows.length > 0) onCommitted([clusterId]);
                return rows;
              };
            }
            const value = Reflect.get(inner, innerProperty, innerReceiver);
            return typeof value === "function" ? value.bind(inner) : value;
          },
        });
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
