// The SKU table's prices come from the shop's API after the page has loaded, as on real
// storefronts: a robot that reads only the HTML sees no prices. A link with ?sku=<code>
// (as a platform's skuId) shows that SKU chosen: its row marked "selected".
(async () => {
  const table = document.querySelector("table.skus");
  const body = table.querySelector("tbody");
  const id = table.dataset.productId;
  const response = await fetch(`/shop/api/products/${id}/skus`, {headers: {Accept: "application/json"}});
  if (!response.ok) {
    body.innerHTML = '<tr class="error"><td colspan="5">价格加载失败，请刷新重试</td></tr>';
    table.dataset.loaded = "error";
    return;
  }
  const data = await response.json();
  const chosen = new URLSearchParams(location.search).get("sku");
  body.replaceChildren(...data.skus.map((s) => {
    const row = document.createElement("tr");
    row.dataset.sku = s.sku;
    if (s.sku === chosen) row.classList.add("selected");
    const stock = s.stock > 0 ? String(s.stock) : "无货";
    for (const [cls, text] of [["sku-name", s.name], ["sku-list-price", "¥" + s.list_price],
                               ["sku-price", "¥" + s.price], ["sku-final-price", "¥" + s.final_price],
                               ["sku-stock", stock]]) {
      const cell = document.createElement("td");
      cell.className = cls;
      cell.textContent = text;
      row.append(cell);
    }
    return row;
  }));
  table.dataset.loaded = "true";
})();
