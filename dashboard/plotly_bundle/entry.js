// plotly.js 4.1.1 with the traces the Zhili dashboard draws: choropleth and scattergeo
// (the map), scatter (trend, alert pattern; core), bar (breakdowns), sankey (the case
// desk's flow of cases level to level).
var Plotly = require('plotly.js/lib/core');
Plotly.register([
    require('plotly.js/lib/bar'),
    require('plotly.js/lib/scattergeo'),
    require('plotly.js/lib/choropleth'),
    require('plotly.js/lib/sankey'),
]);
module.exports = Plotly;
