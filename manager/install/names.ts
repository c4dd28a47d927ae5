/**
 * Fixed names of the operator's installation (the chart uses the same). Their own module, free of imports, so
 * the operator can name its ServiceAccount without loading the manifest builder and its YAML library.
 */
export const OPERATOR_NAMESPACE = "kubenova-system";
export const OPERATOR_NAME = "kubenova-operator";
export const BOOTSTRAP_SECRET_NAME = "kubenova-bootstrap";
export const OPERATOR_DATA_DIR = "/var/lib/kubenova";
export const OPERATOR_HEALTH_PORT = 8081;
