// Compose a supergraph from subgraph SDL files with Apollo's own composer (@apollo/composition).
// usage: COMPOSITION_DIR=<dir with node_modules> node compose_supergraph.cjs name=file.graphql ...
// Prints the supergraph SDL; on composition errors prints them and exits 1.
const fs = require("node:fs");
const where = { paths: [process.env.COMPOSITION_DIR] };
const { composeServices } = require(require.resolve("@apollo/composition", where));
const { parse } = require(require.resolve("graphql", where));

const services = process.argv.slice(2).map((arg) => {
  const [name, file] = arg.split("=");
  return { name, url: `http://${name}/graphql`, typeDefs: parse(fs.readFileSync(file, "utf8")) };
});
const result = composeServices(services);
if (result.errors && result.errors.length) {
  for (const error of result.errors) console.error(error.message);
  process.exit(1);
}
process.stdout.write(result.supergraphSdl);
