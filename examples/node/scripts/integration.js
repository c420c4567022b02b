const fs = require('fs');
const { add } = require('../build/index.js');
if (add(1, 1) !== 2 || !fs.existsSync('build/index.html')) process.exit(1);
console.log('integration tests passed');
