// The shop's products and the stock it starts with.
'use strict'
const INITIAL_STOCK = { 535: 150, 125: 80, 777: 25, 901: 40 }
const PRICES = { 535: 300, 125: 100, 777: 1250, 901: 45 }
module.exports = { INITIAL_STOCK, PRICES }
