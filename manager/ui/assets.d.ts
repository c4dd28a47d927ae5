/**
 * The dashboard's files are imported as text (`with { type: "text" }`) so they live inside `bun build --compile`;
 * these declarations give those imports their real type, a string. Narrow patterns: nothing else is affected.
 */
declare module "*/ui/index.html" {
  const text: string;
  export default text;
}
declare module "*/ui/styles.css" {
  const text: string;
  export default text;
}
declare module "*/ui/app.js" {
  const text: string;
  export default text;
}
declare module "*/ui/api.js" {
  const text: string;
  export default text;
}
declare module "*/ui/chart.js" {
  const text: string;
  export default text;
}
declare module "*/ui/dom.js" {
  const text: string;
  export default text;
}
