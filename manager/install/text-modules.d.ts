/** `import text from "./x.yaml" with { type: "text" }`: Bun inlines the file as a string (also in --compile). */
declare module "*.yaml" {
  const text: string;
  export default text;
}
