/**
 * @module shared/api/common — building blocks of the API schemas: names, labels, pagination, the error body.
 */
import { z } from "zod";

/** DNS-1123 label (RFC 1123): lowercase alphanumerics and '-', starting and ending alphanumeric. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function dnsLabel(maxLength = 63) {
  return z
    .string()
    .min(1, "must not be empty")
    .max(maxLength, `must be at most ${maxLength} characters`)
    .regex(
      DNS_LABEL,
      "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending alphanumeric",
    );
}

/**
 * Tenant names are shorter than a full label because they prefix namespace names: `<tenant>-owner`,
 * `<tenant>-apps`, `<tenant>-<project>` must still fit in 63 characters (DESIGN.md §6).
 */
export const TenantName = dnsLabel(30).meta({
  description: "Tenant name (DNS-1123 label, at most 30 characters)",
});
export const ProjectName = dnsLabel(32)
  .refine((name) => name !== "owner" && name !== "apps", "the names 'owner' and 'apps' are reserved")
  .meta({
    description: "Project name (DNS-1123 label, at most 32 characters; 'owner' and 'apps' are reserved)",
  });
export const ResourceName = dnsLabel(63).meta({ description: "DNS-1123 label" });

const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

/** Kubernetes-style labels: qualified-name keys, values of at most 63 characters. */
export const Labels = z
  .record(
    z
      .string()
      .max(316)
      .regex(LABEL_KEY, "label keys must be qualified names such as 'team' or 'example.com/team'")
      // Kubernetes: the name part is at most 63 characters, the DNS-subdomain prefix at most 253.
      .refine((key) => {
        const slash = key.indexOf("/");
        return key.length - slash - 1 <= 63 && slash <= 253;
      }, "label key names must be at most 63 characters, prefixes at most 253"),
    z
      .string()
      .max(63, "label values must be at most 63 characters")
      .regex(LABEL_VALUE, "invalid label value"),
  )
  .refine((labels) => Object.keys(labels).length <= 64, "at most 64 labels")
  .meta({ id: "Labels", description: "Labels, as in Kubernetes" });

export const DisplayName = z.string().min(1).max(128);
export const Timestamp = z.string().meta({ description: "RFC 3339 timestamp, UTC", format: "date-time" });

export const MAX_PAGE_LIMIT = 500;
export const DEFAULT_PAGE_LIMIT = 50;

export const PageQuery = z
  .object({
    limit: z.coerce
      .number()
      .int("must be an integer")
      .min(1, "must be at least 1")
      .max(MAX_PAGE_LIMIT, `must be at most ${MAX_PAGE_LIMIT}`)
      .optional()
      .meta({ description: `Page size (default ${DEFAULT_PAGE_LIMIT}, at most ${MAX_PAGE_LIMIT})` }),
    cursor: z
      .string()
      .max(512)
      .optional()
      .meta({ description: "Opaque cursor from a previous page's `nextCursor`" }),
  })
  .strict();

export function pageOf<T extends z.ZodType>(item: T, id: string) {
  return z
    .object({ items: z.array(item), nextCursor: z.string().nullable() })
    .meta({ id, description: "One page of results; `nextCursor` is null on the last page" });
}

export const FieldIssueSchema = z.object({ path: z.string(), message: z.string() });

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().meta({ example: "KN-400" }),
      message: z.string(),
      requestId: z.string(),
      details: z.array(FieldIssueSchema).optional(),
    }),
  })
  .meta({ id: "Error", description: "Every error KubeNova answers with" });

/** Kubernetes label selector string, e.g. `env=prod,tier!=db,region in (eu,us),!legacy`. */
export const LabelSelectorQuery = z.string().max(1024).meta({
  description: "Label selector: `k=v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, comma-separated",
});
